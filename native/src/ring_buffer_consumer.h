// Drains a BPF ring buffer on a native thread and hands batches of records to
// JavaScript through a thread-safe function. A batch counts as in flight from
// its hand-over until JS calls done(bytes) for it, so JS may work through it
// in slices between other work. While batches are in flight, the next one
// keeps filling, so a busy JS thread gets fewer, larger batches. When JS falls
// behind by maxQueuedBatches batches or maxQueuedBytes, the thread stops draining:
// records wait in the kernel ring (sized for bursts), and if that fills too,
// the BPF programs count what they could not reserve (ring_buffer_full). JS
// memory stays bounded and no record is lost uncounted.
#pragma once
#include <bpf/libbpf.h>
#include <napi.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace flowtel {

class RingBufferConsumer : public Napi::ObjectWrap<RingBufferConsumer> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit RingBufferConsumer(const Napi::CallbackInfo &info);
  ~RingBufferConsumer() override;

 private:
  // Batches handed to JS and not yet done, and their bytes.
  struct Backlog {
    std::atomic<uint32_t> batches{0};
    std::atomic<uint64_t> bytes{0};
    void Release(uint64_t size);
  };
  struct Batch {
    std::vector<uint8_t> bytes;
    uint32_t records = 0;
    // Shared because a batch can outlive the consumer object.
    std::shared_ptr<Backlog> backlog;
  };

  Napi::Value Stats(const Napi::CallbackInfo &info);
  void Stop(const Napi::CallbackInfo &info);
  void Done(const Napi::CallbackInfo &info);

  static int OnRecord(void *ctx, void *data, size_t size);
  void PollLoop();
  bool Flush(bool force = false);
  void Shutdown();

  int map_fd_ = -1;  // our own dup of the map fd
  struct ring_buffer *ring_ = nullptr;
  Napi::ThreadSafeFunction deliver_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool draining_ = false;  // stopping: take everything left in the ring, ignore the batch size
  bool running_ = false;
  int poll_timeout_ms_ = 100;
  size_t max_batch_bytes_ = 256 * 1024;
  uint32_t max_in_flight_ = 64;
  uint64_t max_queued_bytes_ = 16 << 20;
  std::shared_ptr<Backlog> backlog_ = std::make_shared<Backlog>();
  Batch current_;
  std::atomic<uint64_t> delivered_records_{0};
  std::atomic<uint64_t> dropped_records_{0};
  std::atomic<uint64_t> delivered_batches_{0};
  std::atomic<uint64_t> poll_errors_{0};
  std::atomic<int> last_poll_error_{0};
};

}  // namespace flowtel
