"""A TCP proxy for fault tests: it forwards to its upstream, refuses (`cut`), or accepts and never
answers (`hold`, a black hole: what the client sends is read and dropped), and switching drops
every connection it has open. `held_open()` says how many held connections their client still
keeps open."""

import socket
import threading


class TcpProxy:
    FORWARD, CUT, HOLD = "forward", "cut", "hold"

    def __init__(self, upstream_port, upstream_host="127.0.0.1", mode=FORWARD):
        self.upstream = (upstream_host, upstream_port)
        self.mode = mode
        self.conns = []
        self.held = {}  # held connection -> whether its client has closed it
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.mode == self.CUT:
                client.close()
                continue
            self.conns.append(client)
            if self.mode == self.HOLD:
                self.held[client] = False
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue  # accepted, never answered
            upstream = socket.create_connection(self.upstream)
            self.conns.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _swallow(self, conn):
        """Reads and drops what a held connection's client sends, until it closes."""
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
        self.held[conn] = True

    def held_open(self):
        """How many held connections their client has not closed."""
        return sum(1 for closed in list(self.held.values()) if not closed)

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def _switch(self, mode):
        self.mode = mode
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.conns = []
        self.held = {}

    def cut(self):
        """Refuse new connections and drop the open ones."""
        self._switch(self.CUT)

    def hold(self):
        """Accept new connections and never answer them; drop the open ones."""
        self._switch(self.HOLD)

    def forward(self):
        """Forward again (held connections are dropped)."""
        self._switch(self.FORWARD)

    def stop(self):
        self.server.close()
        self._switch(self.CUT)
