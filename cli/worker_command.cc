#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "runtime/rpc/stop_signals.h"
#include "runtime/rpc/transport_security.h"
#include "runtime/rpc/worker_server.h"
#include "cli/args.h"
#include "cli/security_options.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/run_inputs.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer worker --config C --id W [--device cpu|cuda:N] [--listen HOST:PORT] [--seed N]\n"
    "                      [--set key=value ...] [--allow-faults] [--tls-cert F --tls-key F] [--token-file F]\n"
    "\n"
    "Serves model instance W of config C (its index among the config's instances, as in\n"
    "summary.json's workers) over gRPC: the config's batcher on a real transformer, exactly as one\n"
    "worker thread of 'twinfer run'. 'twinfer serve' routes requests to it. Times it reports are\n"
    "CLOCK_MONOTONIC microseconds, shared by the processes of one host. A request whose call the\n"
    "router cancels (time limit, router restart) is dropped at once. 'twinfer serve --spawn-workers'\n"
    "starts and supervises workers itself.\n"
    "SIGINT or SIGTERM: stop accepting requests, finish those accepted, exit.\n"
    "A step that fails with an error no one request answers for (a device error) fails the worker:\n"
    "the requests it was running end dropped, the others go back to the router, and it exits with\n"
    "status 3 for its supervisor to start it afresh.\n"
    "\n"
    "  --device cpu|cuda:N  backend (default cpu)\n"
    "  --listen HOST:PORT   gRPC address (default 127.0.0.1:50061; port 0 picks a free one)\n"
    "  --seed N             model weights and randomized batchers (default 1, as 'twinfer run')\n"
    "  --allow-faults       take InjectFault calls (slowdowns, device errors): 'twinfer serve\n"
    "                       --spawn-workers --faults F' starts its workers so; refused otherwise\n";

// A failed engine is of no more use (a device error may poison the process): the worker exits
// with this status, and a supervisor ('twinfer serve --spawn-workers', systemd) starts it afresh.
constexpr int kFailedStatus = 3;

}  // namespace

int worker_command(int argc, char** argv) {
  if (wants_help(argc, argv, (std::string(kUsage) + kSecurityUsage).c_str())) return 0;
  Args args(argc, argv, {"config", "id", "device", "listen", "seed", "tls-cert", "tls-key", "token-file"},
            {"allow-faults"}, {"set"});
  RunConfig config = load_run_config(args.required("config"), args.all("set"));
  runtime::WorkerServerOptions opt;
  if (!args.has("id")) throw Error("--id is required");
  opt.index = static_cast<int>(args.integer("id", -1, 0, std::numeric_limits<int>::max()));
  opt.device = args.get("device", "cpu");
  opt.listen = args.get("listen", "127.0.0.1:50061");
  opt.seed = seed_option(args);
  opt.allow_faults = args.has("allow-faults");
  opt.security = security_options(args);
  const sigset_t stop = runtime::block_stop_signals();
  runtime::WorkerServer server(config, opt);
  std::printf("twinfer worker %d (%s) on %s listening on %s\n", opt.index, server.name().c_str(), opt.device.c_str(),
              server.address().c_str());
  std::fflush(stdout);
  const std::string warning = runtime::exposure_warning(opt.listen, "the worker", opt.security);
  if (!warning.empty()) std::fprintf(stderr, "twinfer worker %d: %s\n", opt.index, warning.c_str());
  const int signal = runtime::wait_for_stop_signal(stop, [&] { return !server.failure().empty(); });
  if (signal == 0) {
    std::fprintf(stderr, "twinfer worker %d: %s; every request it held is answered, exiting (status %d)\n", opt.index,
                 server.failure().c_str(), kFailedStatus);
    server.shutdown();
    return kFailedStatus;
  }
  std::fprintf(stderr, "twinfer worker %d: %s, finishing the requests in flight\n", opt.index, strsignal(signal));
  server.shutdown();
  std::fprintf(stderr, "twinfer worker %d: stopped\n", opt.index);
  return 0;
}

}  // namespace twinfer::cli
