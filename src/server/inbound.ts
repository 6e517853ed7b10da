// A connection's received messages that wait for their turn (each dialect handles a connection's
// messages in order, some of them waiting on Redis): past a bound the socket is not read until they
// drain, so a client that sends faster than its messages are handled fills its own TCP window, not
// the server's memory.

/** What reading a connection is paused and resumed through (ws's WebSocket). */
export interface Pausable {
  pause(): void;
  resume(): void;
}

/** Messages waiting at which reading stops. */
const PAUSE_AT = 256;
/** Messages waiting at which it starts again. */
const RESUME_AT = 64;

/** Counts one connection's waiting messages and pauses its reading while there are too many. */
export class Inbound {
  private waiting = 0;
  private paused = false;

  constructor(private readonly socket: Pausable) {}

  /** True while reading is paused: too many messages wait. */
  get full(): boolean {
    return this.paused;
  }

  /** A message was received and waits for its turn. */
  add(): void {
    if (++this.waiting >= PAUSE_AT && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** A waiting message was handled (or dropped). */
  done(): void {
    if (--this.waiting <= RESUME_AT && this.paused) {
      this.paused = false;
      this.socket.resume(); // ws ignores it once the socket is closed
    }
  }
}
