/* `seqmt serve`: the daemon's command line. */
#ifndef SEQMT_SERVE_CMD_H
#define SEQMT_SERVE_CMD_H

/* Runs `seqmt serve`; argv[0] is the program name for messages ("seqmt serve").
 * Returns the exit status. */
int serve_main(int argc, char **argv);

#endif
