#!/usr/bin/env python3
"""Connection scenarios for the e2e tests, run inside a test pod (ip netns exec).

  serve PORT COUNT [unread]   accept COUNT connections; close each after reading to EOF,
                              or (unread) after data arrived but without reading it (-> RST)
  connect HOST PORT COUNT [SYNCNT] [SEND]
                              COUNT sequential connects; prints a JSON list of outcomes
                              ("ok" or the errno name); SYNCNT limits SYN retries
                              (TCP_SYNCNT), SEND bytes are written before closing
  udp HOST PORT COUNT [spread]
                              send COUNT datagrams (spread: one to each of PORT .. PORT+COUNT-1)
"""
import errno
import json
import socket
import sys
import time


def serve(port, count, unread):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(128)
    print("ready", flush=True)
    for _ in range(count):
        conn, _ = listener.accept()
        if unread:
            time.sleep(0.2)  # let the client's data arrive, then close without reading it
        else:
            while conn.recv(65536):
                pass
        conn.close()
    listener.close()


def connect(host, port, count, syncnt, send):
    outcomes = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if syncnt:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, syncnt)
        try:
            s.connect((host, port))
            if send:
                s.sendall(b"x" * send)
                time.sleep(0.5)  # the peer closes with our data unread and answers with RST
            outcomes.append("ok")
        except OSError as e:
            outcomes.append(errno.errorcode.get(e.errno, str(e.errno)))
        finally:
            s.close()
    print(json.dumps(outcomes), flush=True)


def udp(host, port, count, spread):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(count):
        s.sendto(b"flowtel-test", (host, port + i if spread else port))
        time.sleep(0.002)
    s.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "unread")
    elif mode == "connect":
        connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                int(sys.argv[5]) if len(sys.argv) > 5 else 0, int(sys.argv[6]) if len(sys.argv) > 6 else 0)
    elif mode == "udp":
        udp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), len(sys.argv) > 5 and sys.argv[5] == "spread")
    else:
        sys.exit("unknown mode " + mode)
