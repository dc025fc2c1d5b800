#include "splitpipe/interrupt.hpp"

#include <csignal>
#include <initializer_list>

namespace splitpipe {
namespace {

volatile std::sig_atomic_t received = 0;

extern "C" void remember_signal(int signal) {
  received = signal;
  // A second Ctrl-C means "now": it kills without waiting for the step to end.
  if (signal == SIGINT) std::signal(SIGINT, SIG_DFL);
}

}  // namespace

void install_interrupt_handlers() {
  for (int signal : {SIGUSR1, SIGTERM, SIGINT}) std::signal(signal, remember_signal);
}

int interrupt_signal() { return received; }

}  // namespace splitpipe
