// How many connections the kernel may hold, accepted by TCP but not yet by Herald, on a listening
// socket. Node asks for 511; when thousands of clients connect at once (a deploy, a network blip,
// a node restart) the queue fills, the kernel drops handshakes, and some clients wait for
// retransmissions or are reset. Herald asks for the most the kernel allows instead, as Go servers
// do: Linux caps the value at net.core.somaxconn (4096 by default since Linux 5.4), which is the
// knob to raise for larger storms.
export const LISTEN_BACKLOG = 65535;
