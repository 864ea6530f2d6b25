#!/usr/bin/env python3
"""Connection scenarios for the e2e tests, run inside a test pod (ip netns exec).

  serve PORT COUNT [unread]   accept COUNT connections; close each after reading to EOF,
                              or (unread) after data arrived but without reading it (-> RST)
  connect HOST PORT COUNT [SYNCNT] [SEND]
                              COUNT sequential connects; prints a JSON list of outcomes
                              ("ok" or the errno name); SYNCNT limits SYN retries
                              (TCP_SYNCNT), SEND bytes are written before closing
  echo-serve PORT             answer every connection (read a request, write a reply, close) until killed
  churn HOST PORT SECONDS     short connections (connect, request, reply, close) for SECONDS; prints the count
  refused HOST PORT SECONDS   connects to a port nobody listens on (answered by a reset) for SECONDS; prints the count
  flood HOST PORT SECONDS     UDP datagrams as fast as possible for SECONDS; prints the count
  paced HOST PORT SECONDS RATE [SOCKETS [PORTS]]
                              UDP datagrams at RATE per second for SECONDS, round robin from
                              SOCKETS sockets (source ports) to PORTS ports from PORT; prints the count
  flows PREFIX FIRST_HOST HOSTS FIRST_PORT PORTS
                              one UDP datagram to each of HOSTS x PORTS addresses (distinct flows)
  late-serve PORT             accept one connection, wait for the client's FIN, then send data
                              (the client's TIME_WAIT socket answers it with a reset)
  connect-close HOST PORT     connect, print the local port, close at once (the socket lives on
                              in TIME_WAIT, in its FIN_WAIT2 substate while the server stays open)
  udp HOST PORT COUNT [spread]
                              send COUNT datagrams (spread: one to each of PORT .. PORT+COUNT-1)
"""
import errno
import json
import socket
import sys
import time


def listen(port, backlog):
    """A TCP listener on every address of the pod; "ready" on stdout tells the test it may connect."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(backlog)
    print("ready", flush=True)
    return listener


def serve(port, count, unread):
    listener = listen(port, 128)
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


def echo_serve(port):
    listener = listen(port, 1024)
    while True:
        conn, _ = listener.accept()
        try:
            conn.recv(64)
            conn.sendall(b"pong")
            conn.recv(16)  # the client closes first, so TIME-WAIT stays on its side (reusable)
        except OSError:
            pass
        conn.close()


def churn(host, port, seconds):
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s = socket.create_connection((host, port))
        s.sendall(b"ping")
        s.recv(16)
        s.close()
        done += 1
    print(done, flush=True)


def refused(host, port, seconds):
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect((host, port))
            sys.exit("%s:%d accepted a connection; it must be closed" % (host, port))
        except ConnectionRefusedError:
            done += 1
        finally:
            s.close()
    print(done, flush=True)


def flood(host, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    deadline = time.monotonic() + seconds
    payload = b"x" * 16
    while time.monotonic() < deadline:
        for _ in range(256):
            s.sendto(payload, (host, port))
        sent += 256
    print(sent, flush=True)


def paced(host, port, seconds, rate, sockets=1, ports=1):
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(sockets)]
    sent = 0
    start = time.monotonic()
    payload = b"x" * 16
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate) + 64
        while sent < due:
            senders[sent % sockets].sendto(payload, (host, port + sent % ports))
            sent += 1
        time.sleep(0.0005)
    print(sent, flush=True)


def flows(prefix, first_host, hosts, first_port, ports):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    for h in range(first_host, first_host + hosts):
        for p in range(first_port, first_port + ports):
            try:
                s.sendto(b"f", ("%s.%d" % (prefix, h), p))
                sent += 1
            except OSError:
                pass
    print(sent, flush=True)


def late_serve(port):
    listener = listen(port, 1)
    conn, _ = listener.accept()
    while conn.recv(65536):
        pass
    # Let the ACK of the client's FIN go out on its own (not on our data), so that the client's socket is in
    # FIN_WAIT2, and so TIME_WAIT, when the data arrives; in FIN_WAIT1 it would still be a full socket.
    time.sleep(1)
    try:
        conn.sendall(b"late")
        time.sleep(0.5)  # the reset arrives
    except OSError:
        pass
    conn.close()
    listener.close()


def connect_from(host, port, source_port, send):
    """One connection from a chosen local port, `send` bytes, then a close."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", source_port))
    s.connect((host, port))
    s.sendall(b"x" * send)
    time.sleep(0.3)
    s.close()


def connect_close(host, port):
    s = socket.create_connection((host, port))
    print(json.dumps({"port": s.getsockname()[1]}), flush=True)
    s.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "unread")
    elif mode == "connect":
        connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                int(sys.argv[5]) if len(sys.argv) > 5 else 0, int(sys.argv[6]) if len(sys.argv) > 6 else 0)
    elif mode == "late-serve":
        late_serve(int(sys.argv[2]))
    elif mode == "connect-from":
        connect_from(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "connect-close":
        connect_close(sys.argv[2], int(sys.argv[3]))
    elif mode == "udp":
        udp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), len(sys.argv) > 5 and sys.argv[5] == "spread")
    elif mode == "echo-serve":
        echo_serve(int(sys.argv[2]))
    elif mode == "churn":
        churn(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "refused":
        refused(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "flood":
        flood(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "paced":
        paced(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]),
              int(sys.argv[6]) if len(sys.argv) > 6 else 1, int(sys.argv[7]) if len(sys.argv) > 7 else 1)
    elif mode == "flows":
        flows(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit("unknown mode " + mode)
