/* `seqmt serve`: the daemon's command line. */
#ifndef SEQMT_SERVE_CMD_H
#define SEQMT_SERVE_CMD_H

/* Runs `seqmt serve` with argv[0] == "serve". Returns the exit status. */
int serve_main(int argc, char **argv);

#endif
