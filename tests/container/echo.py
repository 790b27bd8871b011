#!/usr/bin/env python3
"""TCP and UDP echo for tests/container/run.sh (standard library only).

  echo.py serve ADDR PORT          echo TCP streams and UDP datagrams on ADDR:PORT until killed
  echo.py tcp ADDR PORT BYTES      send BYTES random bytes, read them back, compare (SHA-256)
  echo.py udp ADDR PORT COUNT      send COUNT datagrams, one at a time, each answered in 2 s

The client modes print one line with what they measured and exit 1 on any mismatch or loss.
"""

import hashlib
import os
import socket
import sys
import threading
import time


def serve(addr: str, port: int) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((addr, port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((addr, port))
    tcp.listen(8)

    def udp_loop() -> None:
        while True:
            data, peer = udp.recvfrom(65535)
            udp.sendto(data, peer)

    def tcp_conn(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    threading.Thread(target=udp_loop, daemon=True).start()
    while True:
        conn, _ = tcp.accept()
        threading.Thread(target=tcp_conn, args=(conn,), daemon=True).start()


def tcp_client(addr: str, port: int, size: int) -> int:
    payload = os.urandom(size)
    start = time.monotonic()
    with socket.create_connection((addr, port), timeout=20) as s:
        sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
        sender.start()
        got = bytearray()
        while chunk := s.recv(65536):
            got += chunk
        sender.join()
    elapsed = time.monotonic() - start
    same = hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    print(f"tcp {addr}:{port}: {size} bytes out, {len(got)} back in {elapsed:.2f} s, "
          f"{'identical' if same else 'DIFFERENT'} ({2 * size * 8 / elapsed / 1e6:.1f} Mbit/s both ways)")
    return 0 if same else 1


def udp_client(addr: str, port: int, count: int) -> int:
    ok = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.connect((addr, port))
        for i in range(count):
            msg = f"l2sec-container-udp-{i}-".encode() + os.urandom(64)
            s.send(msg)
            try:
                if s.recv(65535) == msg:
                    ok += 1
            except TimeoutError:
                pass
    print(f"udp {addr}:{port}: {ok}/{count} datagrams echoed")
    return 0 if ok == count else 1


def main() -> int:
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "serve":
        serve(addr, port)
        return 0
    if mode == "tcp":
        return tcp_client(addr, port, int(sys.argv[4]))
    if mode == "udp":
        return udp_client(addr, port, int(sys.argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
