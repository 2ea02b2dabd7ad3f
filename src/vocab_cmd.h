/* `seqmt vocab`: subword codes and vocabularies on the command line. */
#ifndef SEQMT_VOCAB_CMD_H
#define SEQMT_VOCAB_CMD_H

/* Runs `seqmt vocab`; argv[0] is the program name for messages ("seqmt vocab") and
 * argv[1] the action. Returns the exit status. */
int vocab_main(int argc, char **argv);

#endif
