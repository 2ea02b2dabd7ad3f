/* `seqmt vocab`: subword codes and vocabularies on the command line. */
#ifndef SEQMT_VOCAB_CMD_H
#define SEQMT_VOCAB_CMD_H

/* Runs `seqmt vocab` with argv[0] == "vocab". Returns the exit status. */
int vocab_main(int argc, char **argv);

#endif
