#include "errors.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace flowtel {
namespace {

// libbpf logs from whichever thread calls it; keep the recent tail only.
constexpr size_t kMaxLogBytes = 8192;
std::mutex log_mutex;
std::string log_tail;

int CaptureLibbpfPrint(enum libbpf_print_level level, const char *format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // One call can print a whole verifier log, whose end says what was refused: format it all, keep the tail.
  va_list again;
  va_copy(again, args);
  int n = vsnprintf(nullptr, 0, format, args);
  if (n < 0) {
    va_end(again);
    return 0;
  }
  std::string line(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(line.data(), line.size(), format, again);
  va_end(again);
  line.resize(static_cast<size_t>(n));
  std::lock_guard<std::mutex> lock(log_mutex);
  log_tail.append(line);
  if (log_tail.size() > kMaxLogBytes) log_tail.erase(0, log_tail.size() - kMaxLogBytes);
  return n;
}

std::string TakeLog() {
  std::lock_guard<std::mutex> lock(log_mutex);
  std::string out;
  out.swap(log_tail);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

void InstallLibbpfLogger() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(CaptureLibbpfPrint); });
}

void ClearLibbpfLog() { TakeLog(); }

void ThrowErrno(Napi::Env env, const std::string &subject, const std::string &what, int err) {
  if (err < 0) err = -err;
  // libbpf's own codes (4000 and up, such as "BPF object format invalid") are unknown to strerror.
  char text[128];
  if (libbpf_strerror(err, text, sizeof(text)) != 0) snprintf(text, sizeof(text), "%s", strerror(err));
  std::string message = subject + ": " + what + ": " + text + " (errno " + std::to_string(err) + ")";
  std::string log = TakeLog();
  if (!log.empty()) message += "\nlibbpf: " + log;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("subject", Napi::String::New(env, subject));
  // Apart from the message, so callers can tell a verifier refusal from a map that could not be created.
  error.Set("libbpfLog", Napi::String::New(env, log));
  throw error;
}

void ThrowMessage(Napi::Env env, const std::string &subject, const std::string &what) {
  Napi::Error error = Napi::Error::New(env, subject + ": " + what);
  error.Set("subject", Napi::String::New(env, subject));
  throw error;
}

}  // namespace flowtel
