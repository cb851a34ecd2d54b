import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A loopback TCP proxy to a server (PostgreSQL, in the outage tests) that can be cut: `cut()` drops every open
 * connection and from then on closes each new one at once, as a database that went away would look to its
 * clients; `restore()` lets connections through again.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private down = false;
  private stalled = false;
  private refusedCount = 0;
  private heldCount = 0;
  private readonly server = createServer((client) => this.accept(client));
  private listeningPort = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetHost, targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.listeningPort = (proxy.server.address() as AddressInfo).port;
    return proxy;
  }

  get port(): number {
    return this.listeningPort;
  }

  /** How many connections were closed at once while cut (each a client's try to reconnect). */
  get refused(): number {
    return this.refusedCount;
  }

  /** How many chunks a client sent while stalled, never passed on (each a query left waiting, say). */
  get held(): number {
    return this.heldCount;
  }

  cut(): void {
    this.down = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  restore(): void {
    this.down = false;
    this.stalled = false;
  }

  /**
   * A database that stops answering without closing anything (a network partition, a host that froze): open
   * connections stay open but nothing passes any more, and new ones are accepted and never answered.
   */
  stall(): void {
    this.stalled = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.down) {
      this.refusedCount++;
      client.destroy();
      return;
    }
    if (this.stalled) {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      return;
    }
    const upstream = connect(this.targetPort, this.targetHost);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // Either side failing ends both: the client sees its connection cut, as it would with the server gone.
      socket.on('error', () => undefined);
    }
    client.on('data', (chunk: Buffer) => {
      if (this.stalled) this.heldCount++;
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!this.stalled) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}
