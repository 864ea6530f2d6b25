#include "ring_buffer_consumer.h"

#include <chrono>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "errors.h"

namespace flowtel {
namespace {

// Records in a batch are framed as [u32 length][payload][pad to 8 bytes].
constexpr size_t kFrameHeader = 4;
size_t Align8(size_t n) { return (n + 7) & ~static_cast<size_t>(7); }

uint32_t OptionUint(Napi::Object options, const char *key, uint32_t fallback, uint32_t min,
                    uint32_t max) {
  if (!options.Has(key)) return fallback;
  Napi::Value v = options.Get(key);
  if (!v.IsNumber())
    throw Napi::TypeError::New(options.Env(), std::string("ring buffer option ") + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < min || d > max || d != static_cast<uint32_t>(d))
    throw Napi::RangeError::New(options.Env(), std::string("ring buffer option ") + key + " must be an integer in [" +
                                                   std::to_string(min) + ", " + std::to_string(max) + "]");
  return static_cast<uint32_t>(d);
}

}  // namespace

Napi::Function RingBufferConsumer::Define(Napi::Env env) {
  return DefineClass(env, "RingBufferConsumer",
                     {
                         InstanceMethod("stats", &RingBufferConsumer::Stats),
                         InstanceMethod("stop", &RingBufferConsumer::Stop),
                         InstanceMethod("done", &RingBufferConsumer::Done),
                     });
}

// new RingBufferConsumer(mapFd, onBatch(buffer, records), {maxQueuedBatches, maxQueuedBytes, pollTimeoutMs, maxBatchBytes})
RingBufferConsumer::RingBufferConsumer(const Napi::CallbackInfo &info)
    : Napi::ObjectWrap<RingBufferConsumer>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "RingBufferConsumer(mapFd, onBatch, options?)");
  Napi::Object options = info.Length() > 2 && info[2].IsObject() ? info[2].As<Napi::Object>()
                                                                  : Napi::Object::New(env);
  uint32_t max_queue = OptionUint(options, "maxQueuedBatches", 64, 1, 1 << 20);
  poll_timeout_ms_ = static_cast<int>(OptionUint(options, "pollTimeoutMs", 100, 1, 10000));
  max_batch_bytes_ = OptionUint(options, "maxBatchBytes", 256 * 1024, 4096, 64 << 20);
  max_in_flight_ = max_queue;
  max_queued_bytes_ = OptionUint(options, "maxQueuedBytes", 16 << 20, 4096, 1u << 31);

  int fd = info[0].As<Napi::Number>().Int32Value();
  // Own a dup so the consumer outlives the object that created the map.
  map_fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (map_fd_ < 0) ThrowErrno(env, "ring buffer fd " + std::to_string(fd), "dup", errno);
  ClearLibbpfLog();
  ring_ = ring_buffer__new(map_fd_, &RingBufferConsumer::OnRecord, this, nullptr);
  int err = libbpf_get_error(ring_);
  if (ring_ == nullptr || err != 0) {
    int saved = err != 0 ? err : errno;
    ring_ = nullptr;
    close(map_fd_);
    map_fd_ = -1;
    ThrowErrno(env, "ring buffer fd " + std::to_string(fd), "create consumer", saved);
  }
  // One slot more than the in-flight bound: the final batch at stop is queued
  // even while JS still works on another (it cannot be waited for: Stop joins).
  deliver_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "flowtel-ringbuf",
                                           max_queue + 1, 1);
  running_ = true;
  thread_ = std::thread(&RingBufferConsumer::PollLoop, this);
}

RingBufferConsumer::~RingBufferConsumer() { Shutdown(); }

int RingBufferConsumer::OnRecord(void *ctx, void *data, size_t size) {
  auto *self = static_cast<RingBufferConsumer *>(ctx);
  Batch &batch = self->current_;
  size_t at = batch.bytes.size();
  batch.bytes.resize(at + Align8(kFrameHeader + size), 0);
  uint32_t length = static_cast<uint32_t>(size);
  memcpy(batch.bytes.data() + at, &length, kFrameHeader);
  memcpy(batch.bytes.data() + at + kFrameHeader, data, size);
  batch.records++;
  // A full batch ends this poll (libbpf has consumed this record already, so it
  // is kept); the rest stays in the ring until the loop has handed this over.
  return !self->draining_ && batch.bytes.size() >= self->max_batch_bytes_ ? -EAGAIN : 0;
}

void RingBufferConsumer::Backlog::Release(uint64_t size) {
  uint32_t n = batches.load();
  while (n > 0 && !batches.compare_exchange_weak(n, n - 1)) {
  }
  uint64_t b = bytes.load();
  while (!bytes.compare_exchange_weak(b, b > size ? b - size : 0)) {
  }
}

// Hands the current batch to JS; false (batch kept) while JS is behind by
// maxQueuedBatches or maxQueuedBytes, unless forced (the final batch at stop).
// A batch larger than the byte bound still goes out once JS has nothing.
bool RingBufferConsumer::Flush(bool force) {
  if (current_.records == 0) return true;
  uint64_t size = current_.bytes.size();
  uint32_t behind = backlog_->batches.load();
  if (!force && (behind >= max_in_flight_ || (behind > 0 && backlog_->bytes.load() + size > max_queued_bytes_))) return false;
  auto *batch = new Batch(std::move(current_));
  current_ = Batch();
  batch->backlog = backlog_;
  uint32_t records = batch->records;
  backlog_->batches.fetch_add(1);
  backlog_->bytes.fetch_add(size);
  napi_status status = deliver_.NonBlockingCall(batch, [](Napi::Env env, Napi::Function callback,
                                                          Batch *data) {
    std::vector<uint8_t> *bytes = new std::vector<uint8_t>(std::move(data->bytes));
    std::shared_ptr<Backlog> backlog = std::move(data->backlog);
    uint32_t count = data->records;
    uint64_t size = bytes->size();
    delete data;
    if (env == nullptr) {
      delete bytes;  // the function is being torn down: JS will never see it
      backlog->Release(size);
      return;
    }
    Napi::Buffer<uint8_t> buffer = Napi::Buffer<uint8_t>::New(
        env, bytes->data(), bytes->size(), [](Napi::Env, uint8_t *, std::vector<uint8_t> *owned) { delete owned; },
        bytes);
    try {
      callback.Call({buffer, Napi::Number::New(env, count)});
    } catch (...) {
      // JS did not take the batch, so it will not call done() for it.
      backlog->Release(size);
      throw;
    }
  });
  if (status == napi_ok) {
    delivered_records_ += records;
    delivered_batches_++;
  } else {
    // Closing (or a queue that is full despite the in-flight bound): count, never block.
    backlog_->Release(size);
    dropped_records_ += records;
    delete batch;
  }
  return true;
}

void RingBufferConsumer::PollLoop() {
  while (!stopping_.load()) {
    // Hand over when JS is idle, or when the batch is full (Flush refuses while
    // maxQueuedBatches are in flight); otherwise keep filling it while JS works
    // on the previous one.
    if (current_.records > 0 && (backlog_->batches.load() == 0 || current_.bytes.size() >= max_batch_bytes_)) Flush();
    if (current_.bytes.size() >= max_batch_bytes_) {
      // JS is behind by maxQueuedBatches full batches: leave records in the kernel ring.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    // Holding records for a busy JS thread: come back soon to hand them over.
    int n = ring_buffer__poll(ring_, current_.records > 0 ? 1 : poll_timeout_ms_);
    // Producers wake us only once per flowtel_ringbuf_wakeup_bytes (see
    // flowtel_event_submit): after a timeout, take what arrived without a wakeup.
    if (n == 0) n = ring_buffer__consume(ring_);
    if (n < 0 && n != -EINTR && n != -EAGAIN) {
      poll_errors_++;
      last_poll_error_ = -n;
    }
  }
  // Everything still in the ring, and what was taken from it, goes out as one
  // last batch (delivered after Stop returns, or counted as dropped).
  draining_ = true;
  int n = ring_buffer__consume(ring_);
  if (n < 0 && n != -EINTR) {
    poll_errors_++;
    last_poll_error_ = -n;
  }
  Flush(true);
}

void RingBufferConsumer::Shutdown() {
  if (!running_) return;
  running_ = false;
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  deliver_.Release();
  ring_buffer__free(ring_);
  ring_ = nullptr;
  if (map_fd_ >= 0) close(map_fd_);
  map_fd_ = -1;
}

Napi::Value RingBufferConsumer::Stats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("deliveredRecords", Napi::Number::New(env, static_cast<double>(delivered_records_.load())));
  out.Set("droppedRecords", Napi::Number::New(env, static_cast<double>(dropped_records_.load())));
  out.Set("deliveredBatches", Napi::Number::New(env, static_cast<double>(delivered_batches_.load())));
  out.Set("queuedBatches", Napi::Number::New(env, backlog_->batches.load()));
  out.Set("queuedBytes", Napi::Number::New(env, static_cast<double>(backlog_->bytes.load())));
  out.Set("pollErrors", Napi::Number::New(env, static_cast<double>(poll_errors_.load())));
  out.Set("lastPollErrno", Napi::Number::New(env, last_poll_error_.load()));
  out.Set("running", Napi::Boolean::New(env, running_));
  return out;
}

// Stops polling; batches already queued are still delivered.
void RingBufferConsumer::Stop(const Napi::CallbackInfo &) { Shutdown(); }

// done(bytes): JS has handled a batch of that many bytes; the thread may hand over more.
void RingBufferConsumer::Done(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 0)
    throw Napi::TypeError::New(env, "done(bytes): bytes must be a non-negative number");
  backlog_->Release(static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue()));
}

}  // namespace flowtel
