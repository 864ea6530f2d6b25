// Error helpers: every failure carries the subject (object/program/map name)
// and the errno text, plus the tail of libbpf's own log when it said something.
#pragma once
#include <napi.h>
#include <string>

namespace flowtel {

// Starts capturing libbpf warnings for the next operation on this thread.
void ClearLibbpfLog();
// Installs the libbpf print callback once per process.
void InstallLibbpfLogger();

// Throws a JS Error "<subject>: <what>: <strerror(err)> (errno N)" with the
// captured libbpf log appended. `err` is a positive or negative errno.
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string &subject, const std::string &what,
                             int err);
[[noreturn]] void ThrowMessage(Napi::Env env, const std::string &subject, const std::string &what);

}  // namespace flowtel
