// SPDX-License-Identifier: MIT OR Apache-2.0
// `vipc bench`: options, the order of cases, progress, and the outputs.
//
// Order: repetitions are the outer loop (rep 1 of every case, then rep 2, ...), so a burst of
// noise on the machine spreads over all transports instead of hitting one. Within a
// repetition: transport, placement, then size.
#include <sched.h>
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "bench.hpp"
#include "harness.hpp"
#include "report.hpp"
#include "transport.hpp"

namespace vipc::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kQueueBytesLimit = 64u << 20;

const char* const kUsage =
    "usage: vipc bench [options]\n"
    "\n"
    "Round-trip latency and one-way throughput between two processes, pinned to two cpus\n"
    "(cross-core) and to one cpu (same-core), for every transport side by side.\n"
    "\n"
    "  --quick             short run (about 30 s): fewer round trips, sweep cross-core only\n"
    "  --json              all results as JSON on stdout (the tables go to stderr)\n"
    "  --json-out FILE     write all results as JSON into FILE\n"
    "  --markdown FILE     write the tables as Markdown\n"
    "  --plot-dir DIR      write SVG plots (latency, throughput, size sweep) into DIR\n"
    "  --only NAME[,NAME]  run only these transports (see --list)\n"
    "  --list              print the transports and exit\n"
    "  --rtts N            at most N timed round trips per repetition\n"
    "  --msgs N            at most N streamed messages per repetition\n"
    "  --reps N            repetitions per case (default 3)\n"
    "  --sizes LIST        message sizes of the sweep, e.g. 8,48,4K,1M,64M (48 B is always\n"
    "                      run; a transport runs the sizes it can carry)\n"
    "  --depth N           queue depth asked of queueing transports (default 1024)\n"
    "  --child-log FILE    append the benchmark processes' own output (library logs,\n"
    "                      sanitizer reports) to FILE instead of discarding it\n"
    "  --help              this text\n";

struct Options {
    bool quick = false;
    bool list = false;
    std::string json;          // --json-out FILE, or /dev/stdout for --json
    bool json_stdout = false;  // --json: stdout is the JSON document's alone
    std::string markdown;
    std::string plot_dir;
    std::string child_log;
    std::vector<std::string> only;
    std::optional<std::uint64_t> rtts;
    std::optional<std::uint64_t> msgs;
    int reps = 3;
    std::vector<std::size_t> sizes;
    std::size_t depth = 1024;
};

int usage_error(const std::string& message) {
    std::fprintf(stderr, "vipc bench: %s (see vipc bench --help)\n", message.c_str());
    return 2;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> parts;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            if (!cur.empty()) parts.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) parts.push_back(cur);
    return parts;
}

std::optional<std::uint64_t> parse_count(const std::string& s) {
    if (s.empty() || s.size() > 18) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}

std::optional<std::size_t> parse_size(std::string s) {
    std::size_t mult = 1;
    if (!s.empty() && (s.back() == 'B' || s.back() == 'b')) s.pop_back();
    if (s.size() > 1 && (s.back() == 'i')) s.pop_back();
    if (!s.empty() && (s.back() == 'K' || s.back() == 'k')) {
        mult = 1024;
        s.pop_back();
    } else if (!s.empty() && (s.back() == 'M' || s.back() == 'm')) {
        mult = 1024 * 1024;
        s.pop_back();
    }
    const auto v = parse_count(s);
    if (!v) return std::nullopt;
    return static_cast<std::size_t>(*v) * mult;
}

// Returns an exit code when parsing ends the command (help, error).
std::optional<int> parse(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&](const char* what) -> std::optional<std::string> {
            if (i + 1 >= argc) return std::nullopt;
            (void)what;
            return std::string(argv[++i]);
        };
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (a == "--quick") {
            o.quick = true;
        } else if (a == "--list") {
            o.list = true;
        } else if (a == "--json") {
            o.json_stdout = true;
            o.json = "/dev/stdout";
        } else if (a == "--json-out" || a == "--markdown" || a == "--plot-dir" ||
                   a == "--child-log") {
            const auto v = value(a.c_str());
            if (!v) return usage_error(a + " needs a path, e.g. " + a + " out");
            (a == "--json-out"   ? o.json
             : a == "--markdown" ? o.markdown
             : a == "--plot-dir" ? o.plot_dir
                                 : o.child_log) = *v;
        } else if (a == "--only") {
            const auto v = value("names");
            if (!v) return usage_error("--only needs transport names, e.g. --only pipe,futex");
            o.only = split(*v, ',');
        } else if (a == "--rtts" || a == "--msgs" || a == "--reps" || a == "--depth") {
            const auto v = value("count");
            const auto n = v ? parse_count(*v) : std::nullopt;
            if (!n || *n == 0)
                return usage_error(a + " needs a whole number of at least 1, e.g. " + a + " 3");
            if ((a == "--rtts" || a == "--msgs") && *n > 100'000'000)
                return usage_error(a + " above 100000000 would not fit the time bounds; use e.g. " +
                                   a + " 100000");
            if (a == "--rtts") o.rtts = *n;
            if (a == "--msgs") o.msgs = *n;
            if (a == "--reps") {
                if (*n > 1000) return usage_error("--reps above 1000 is not useful; use e.g. 5");
                o.reps = static_cast<int>(*n);
            }
            if (a == "--depth") o.depth = std::min<std::uint64_t>(*n, 1 << 20);
        } else if (a == "--sizes") {
            const auto v = value("sizes");
            if (!v) return usage_error("--sizes needs a list, e.g. --sizes 8,48,4K,1M");
            for (const std::string& part : split(*v, ',')) {
                const auto s = parse_size(part);
                if (!s || *s < 8 || *s > (64u << 20))
                    return usage_error("--sizes: '" + part +
                                       "' is not a size from 8 to 64M, e.g. --sizes 8,48,4K,1M");
                o.sizes.push_back(*s);
            }
        } else {
            return usage_error("unknown option '" + a + "'");
        }
    }
    return std::nullopt;
}

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

// The 1, 5 and 15 minute load averages, e.g. "0.52 0.40 0.31"; "" when unknown.
std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    if (!(in >> one >> five >> fifteen)) return {};
    return one + " " + five + " " + fifteen;
}

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) cpus.push_back(c);
    return cpus;
}

std::string machine_description(std::size_t cpu_count) {
    std::string model = "unknown cpu";
    std::ifstream info("/proc/cpuinfo");
    for (std::string line; std::getline(info, line);) {
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) model = line.substr(colon + 2);
            break;
        }
    }
    utsname u{};
    uname(&u);
    return model + ", " + std::to_string(cpu_count) + " cpus usable, Linux " + u.release;
}

// The progress line: rewritten in place on a terminal, a line every ~10% otherwise.
class Progress {
public:
    Progress(std::size_t total, Clock::time_point start)
        : total_(total), start_(start), tty_(isatty(STDERR_FILENO) != 0) {}

    void update(std::size_t done, const std::string& what) {
        const int secs = static_cast<int>(
            std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start_).count());
        char line[200];
        std::snprintf(line, sizeof line, "[%4zu/%zu %2d:%02d] %s", done + 1, total_, secs / 60,
                      secs % 60, what.c_str());
        if (tty_) {
            std::fprintf(stderr, "\r%-110.110s", line);
            std::fflush(stderr);
        } else if (total_ > 0 && (done * 10 / total_ != last_decile_ || done == 0)) {
            last_decile_ = done * 10 / total_;
            std::fprintf(stderr, "%s\n", line);
        }
    }
    void finish() {
        if (tty_) std::fprintf(stderr, "\r%-110s\r", "");
    }

private:
    std::size_t total_;
    Clock::time_point start_;
    bool tty_;
    std::size_t last_decile_ = 0;
};

// Set by SIGINT/SIGTERM: no new case starts, the results so far are reported, named
// objects are removed.
volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_interrupt(int) {
    g_interrupted = 1;
}

struct PlannedCase {
    std::size_t transport;  // index into the table
    Placement placement;
    std::size_t size;
    int rep;
};

}  // namespace

int run_bench(int argc, char** argv) {
    Options o;
    if (auto code = parse(argc, argv, o)) return *code;

    std::vector<TransportInfo> table = all_transports();
    if (o.list) {
        for (const TransportInfo& t : table)
            std::printf("%-16s %-8s %s\n", t.name.c_str(), t.group.c_str(), t.description.c_str());
        return 0;
    }
    if (!o.only.empty()) {
        std::vector<TransportInfo> chosen;
        for (const std::string& name : o.only) {
            bool found = false;
            for (const TransportInfo& t : table)
                if (t.name == name) {
                    chosen.push_back(t);
                    found = true;
                }
            if (!found) {
                std::string names;
                for (const TransportInfo& t : table)
                    names += (names.empty() ? "" : ",") + t.name;
                return usage_error("--only: no transport named '" + name + "'; known: " + names);
            }
        }
        table = chosen;
    }
    // Fail before a long run, not after it, when an output cannot be written.
    for (const auto& [option, path] :
         {std::pair<const char*, std::string>{"--json-out", o.json_stdout ? "" : o.json},
          {"--markdown", o.markdown},
          {"--child-log", o.child_log}}) {
        if (path.empty()) continue;
        std::ofstream probe(path, std::ios::app);
        if (!probe)
            return usage_error(std::string(option) + ": cannot write " + path +
                               "; pass a path in a writable directory");
    }
    if (!o.plot_dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(o.plot_dir, ec);
        if (ec)
            return usage_error("--plot-dir: cannot create " + o.plot_dir + " (" + ec.message() +
                               "); pass a writable directory");
    }

    // What a case is allowed to take.
    RunInfo run;
    run.quick = o.quick;
    run.reps = o.reps;
    run.started_utc = utc_now();
    run.load_at_start = load_average();
    run.command = "vipc bench";
    for (int i = 1; i < argc; ++i)
        run.command += std::string(" ") + argv[i];
    // The sweep: every transport runs the sizes up to what it carries; 16 MiB and 64 MiB only
    // the transports that carry them (the spin floors copying the bytes, veridian-ipc loans).
    constexpr std::size_t kKiB = 1024, kMiB = kKiB * 1024;
    if (o.quick) {
        run.main_limits = {100, 0.02, 2000, 0.06, 100000, 0.06, 10};
        run.sweep_limits = {20, 0.01, 300, 0.02, 3000, 0.02, 10};
        run.sweep_sizes = {8, 48, 4 * kKiB, 64 * kKiB, kMiB};
    } else {
        run.main_limits = {2000, 0.2, 100000, 0.6, 2000000, 0.6, 60};
        run.sweep_limits = {100, 0.05, 10000, 0.15, 200000, 0.15, 60};
        run.sweep_sizes = {8,         48,         512,  4 * kKiB,  32 * kKiB,
                           64 * kKiB, 256 * kKiB, kMiB, 16 * kMiB, 64 * kMiB};
    }
    if (!o.sizes.empty()) run.sweep_sizes = o.sizes;
    run.sweep_sizes.push_back(run.main_size);
    std::sort(run.sweep_sizes.begin(), run.sweep_sizes.end());
    run.sweep_sizes.erase(std::unique(run.sweep_sizes.begin(), run.sweep_sizes.end()),
                          run.sweep_sizes.end());
    for (PhaseLimits* l : {&run.main_limits, &run.sweep_limits}) {
        if (o.rtts) {
            l->rtts = *o.rtts;
            l->warmup_rtts = std::min(l->warmup_rtts, std::max<std::uint64_t>(*o.rtts / 10, 10));
        }
        if (o.msgs) l->stream_msgs = *o.msgs;
    }
    // The whole run stops starting cases past this budget; the rest say so.
    // (A case may still take its timeout after the budget.)
    const double budget_seconds = o.quick ? 160 : 1080;

    const std::vector<int> cpus = allowed_cpus();
    run.machine = machine_description(cpus.size());
    std::vector<Placement> placements;
    std::string cross_core_missing;
    if (cpus.size() >= 2)
        placements.push_back({"cross-core", cpus[1], cpus[0]});
    else
        cross_core_missing =
            "cross-core needs two usable cpus; this process may use " + std::to_string(cpus.size());
    if (!cpus.empty()) placements.push_back({"same-core", cpus[0], cpus[0]});

    std::error_code ec;
    char scratch_template[] = "/tmp/vipc-bench-XXXXXX";
    if (mkdtemp(scratch_template) == nullptr) {
        std::fprintf(stderr,
                     "vipc bench: cannot create a scratch directory in /tmp (%s); "
                     "make /tmp writable\n",
                     std::strerror(errno));
        return 1;
    }
    const std::string scratch = scratch_template;
    const std::string child_log = o.child_log.empty() ? scratch + "/children.log" : o.child_log;

    struct sigaction action = {};
    struct sigaction old_int = {};
    struct sigaction old_term = {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);

    const auto start = Clock::now();
    std::vector<TransportResult> results;
    for (const TransportInfo& t : table) {
        TransportResult r;
        r.name = t.name;
        r.description = t.description;
        r.group = t.group;
        r.round_trips = t.round_trips;
        r.streams = t.streams;
        r.max_message_size = t.max_message_size;
        results.push_back(r);
    }

    // Probe every transport once (this may start a daemon, e.g. iceoryx's RouDi).
    std::fprintf(stderr, "vipc bench: %s run, %zu transports, %d repetitions; scratch %s\n",
                 o.quick ? "quick" : "full", table.size(), o.reps, scratch.c_str());
    for (std::size_t i = 0; i < table.size(); ++i) {
        if (!table[i].make) {
            results[i].reason = table[i].probe ? table[i].probe().reason() : "not built";
            if (results[i].reason.empty()) results[i].reason = "not built";
            continue;
        }
        const Status s = table[i].probe();
        if (!s) results[i].reason = s.reason();
    }

    // Plan: first the main size at every placement, then the size sweep (cross-core; also
    // same-core in a full run), so that a run short of time loses sweep points, never a
    // transport. In each part, every case's repetition k runs before any repetition k+1.
    std::vector<PlannedCase> plan;
    for (const bool sweep : {false, true}) {
        for (int rep = 0; rep < o.reps; ++rep) {
            for (std::size_t ti = 0; ti < table.size(); ++ti) {
                if (!results[ti].reason.empty()) continue;
                for (const Placement& p : placements) {
                    for (std::size_t size : run.sweep_sizes) {
                        if (size > table[ti].max_message_size) continue;
                        if ((size != run.main_size) != sweep) continue;
                        if (sweep && p.name != "cross-core" && o.quick) continue;
                        plan.push_back({ti, p, size, rep});
                    }
                }
            }
        }
    }

    // Cases, keyed by (transport, placement, size), in the order they first appear.
    std::map<std::tuple<std::size_t, std::string, std::size_t>, CaseResult> cases;
    std::vector<std::tuple<std::size_t, std::string, std::size_t>> case_order;
    Progress progress(plan.size(), start);
    int case_number = 0;
    for (std::size_t k = 0; k < plan.size(); ++k) {
        const PlannedCase& pc = plan[k];
        const TransportInfo& info = table[pc.transport];
        const auto key = std::make_tuple(pc.transport, pc.placement.name, pc.size);
        if (!cases.count(key)) {
            CaseResult c;
            c.placement = pc.placement;
            c.size = pc.size;
            if (pc.placement.name == "same-core" && !info.same_core_note.empty())
                c.note = info.same_core_note;
            cases[key] = c;
            case_order.push_back(key);
        }
        CaseResult& c = cases[key];
        progress.update(k, "rep " + std::to_string(pc.rep + 1) + "/" + std::to_string(o.reps) +
                               "  " + info.name + "  " + pc.placement.name + "  " +
                               size_label(pc.size));
        RepResult rep;
        // A case that failed every time so far is not retried (its failure may be a timeout).
        const bool failed_before =
            !c.reps.empty() &&
            std::none_of(c.reps.begin(), c.reps.end(), [](const RepResult& r) { return r.ok; });
        if (g_interrupted != 0) {
            rep.reason = "skipped: the run was interrupted";
        } else if (failed_before) {
            rep.reason = "skipped: an earlier repetition failed";
        } else if (std::chrono::duration<double>(Clock::now() - start).count() > budget_seconds) {
            rep.reason = "skipped: the run's time budget was used up";
        } else {
            CaseParams params;
            params.message_size = pc.size;
            // Queues hold at most ~64 MiB, so draining one stays within the case's bounds.
            params.queue_depth =
                std::min(o.depth, std::max<std::size_t>(4, kQueueBytesLimit / pc.size));
            params.unique_name =
                "p" + std::to_string(getpid()) + "_" + std::to_string(case_number++);
            params.scratch_dir = scratch;
            params.same_core = pc.placement.client_cpu == pc.placement.server_cpu;
            std::unique_ptr<Transport> t = info.make();
            const Status prepared = t->prepare(params);
            if (!prepared) {
                rep.reason = "prepare: " + prepared.reason();
            } else {
                const std::string note = t->note();
                if (!note.empty() && c.note.find(note) == std::string::npos)
                    c.note += (c.note.empty() ? "" : "; ") + note;
                const PhaseLimits& limits =
                    pc.size == run.main_size ? run.main_limits : run.sweep_limits;
                rep = run_case(info, *t, params, pc.placement, limits, child_log);
            }
            t->cleanup();
        }
        c.reps.push_back(rep);
    }
    progress.finish();
    for (const TransportInfo& t : table)
        t.shutdown();

    // Attach the cases to their transports; a case without one good repetition gets a reason.
    for (const auto& key : case_order) {
        CaseResult& c = cases[key];
        std::size_t ok = 0;
        std::string first_failure;
        for (const RepResult& r : c.reps) {
            if (r.ok)
                ++ok;
            else if (first_failure.empty())
                first_failure = r.reason;
        }
        if (ok == 0) {
            c.reason = first_failure;
        } else if (ok < c.reps.size()) {
            const std::string n = std::to_string(ok) + " of " + std::to_string(c.reps.size()) +
                                  " repetitions ok; a failed one: " + first_failure;
            c.note += (c.note.empty() ? "" : "; ") + n;
        }
        results[std::get<0>(key)].cases.push_back(c);
    }
    // A placement that cannot exist here is a row with its reason, never a silent gap.
    if (!cross_core_missing.empty()) {
        for (std::size_t i = 0; i < results.size(); ++i) {
            if (!results[i].reason.empty()) continue;
            CaseResult c;
            c.placement = {"cross-core", -1, -1};
            c.size = run.main_size;
            c.reason = cross_core_missing;
            results[i].cases.push_back(c);
        }
    }
    run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    run.load_at_end = load_average();

    // Under --json, stdout carries the JSON document alone; the tables go to stderr.
    std::FILE* human = o.json_stdout ? stderr : stdout;
    print_terminal(human, run, results);
    std::fflush(human);
    int code = 0;
    std::string error;
    if (!o.json.empty()) {
        if (write_json(o.json, run, results, &error)) {
            if (!o.json_stdout) std::fprintf(human, "JSON: %s\n", o.json.c_str());
        } else {
            code = 1;
        }
    }
    if (code == 0 && !o.markdown.empty()) {
        if (write_markdown(o.markdown, run, results, &error))
            std::fprintf(human, "Markdown: %s\n", o.markdown.c_str());
        else
            code = 1;
    }
    if (code == 0 && !o.plot_dir.empty()) {
        std::vector<std::string> written;
        if (write_plots(o.plot_dir, run, results, &written, &error)) {
            for (const std::string& f : written)
                std::fprintf(human, "plot: %s\n", f.c_str());
        } else {
            code = 1;
        }
    }
    if (code != 0) std::fprintf(stderr, "vipc bench: %s\n", error.c_str());
    std::filesystem::remove_all(scratch, ec);
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    if (code == 0 && g_interrupted != 0) {
        std::fprintf(stderr, "vipc bench: interrupted; the results above are incomplete\n");
        code = 130;
    }
    return code;
}

}  // namespace vipc::bench
