/**
 * A collector stand-in for the export benchmark, in its own process so its
 * work is not counted against the exporter: takes OTLP metrics over gRPC
 * (HTTP/2 without TLS) and over OTLP/HTTP, answers each request with an empty
 * success, and counts the request bytes that arrived on the wire (after the
 * gRPC frame, before any decoding). Run with fork(): it sends
 * { grpcPort, httpPort } when listening and answers 'bytes' with the total.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';

let bytes = 0;

const grpc = http2.createServer();
grpc.on('stream', (stream) => {
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    // An empty ExportMetricsServiceResponse: a 5-byte frame with no message bytes.
    stream.end(Buffer.alloc(5));
  });
});

const plain = http.createServer((req, res) => {
  req.on('data', (chunk: Buffer) => (bytes += chunk.length));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': req.headers['content-type'] === 'application/json' ? 'application/json' : 'application/x-protobuf' });
    res.end(req.headers['content-type'] === 'application/json' ? '{}' : '');
  });
});

Promise.all([grpc, plain].map((s) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port))))).then(
  ([grpcPort, httpPort]) => process.send?.({ grpcPort, httpPort }),
);
process.on('message', (message) => {
  if (message === 'bytes') process.send?.({ bytes });
});
process.on('disconnect', () => process.exit(0));
