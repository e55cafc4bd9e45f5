// SPDX-License-Identifier: MIT OR Apache-2.0
// Tables, JSON and SVG for a run. Cells are "median [min–max]" across repetitions.
#include "report.hpp"

#include "../tools/vipc/json_writer.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace vipc::bench {
namespace {

constexpr const char* kPlacements[] = {"cross-core", "same-core"};

std::string fmt_num(double v) {
    char buf[32];
    const double a = std::fabs(v);
    if (a == 0)
        std::snprintf(buf, sizeof buf, "0");
    else if (a < 0.1)
        std::snprintf(buf, sizeof buf, "%.3f", v);
    else if (a < 10)
        std::snprintf(buf, sizeof buf, "%.2f", v);
    else if (a < 100)
        std::snprintf(buf, sizeof buf, "%.1f", v);
    else
        std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

std::string fmt_spread(const Spread& s) {
    return fmt_num(s.median) + " [" + fmt_num(s.min) + "–" + fmt_num(s.max) + "]";
}

std::string fmt_ratio(double r) {
    if (!(r > 0) || !std::isfinite(r)) return "—";
    char buf[32];
    std::snprintf(buf, sizeof buf, r < 10 ? "%.2f×" : (r < 100 ? "%.1f×" : "%.0f×"), r);
    return buf;
}

std::string fmt_count(std::uint64_t n) {
    if (n >= 10000000) return std::to_string(n / 1000000) + "M";
    if (n >= 10000) return std::to_string(n / 1000) + "k";
    return std::to_string(n);
}

}  // namespace

std::string size_label(std::size_t size) {
    if (size >= (1u << 20) && size % (1u << 20) == 0) return std::to_string(size >> 20) + " MiB";
    if (size >= 1024 && size % 1024 == 0) return std::to_string(size >> 10) + " KiB";
    return std::to_string(size) + " B";
}

Spread spread_of(std::vector<double> values) {
    Spread s;
    if (values.empty()) return s;
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    s.median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    s.min = values.front();
    s.max = values.back();
    return s;
}

std::vector<const RepResult*> CaseResult::ok_reps() const {
    std::vector<const RepResult*> ok;
    for (const RepResult& r : reps)
        if (r.ok) ok.push_back(&r);
    return ok;
}

bool CaseResult::has_latency() const {
    for (const RepResult* r : ok_reps())
        if (r->rtts > 0) return true;
    return false;
}

bool CaseResult::has_stream() const {
    for (const RepResult* r : ok_reps())
        if (r->stream_msgs > 0 && r->stream_seconds > 0) return true;
    return false;
}

Spread CaseResult::latency(int which) const {
    std::vector<double> v;
    for (const RepResult* r : ok_reps()) {
        if (r->rtts == 0) continue;
        const double values[] = {r->min, r->p50, r->p99, r->p999, r->max};
        v.push_back(values[which]);
    }
    return spread_of(v);
}

Spread CaseResult::msgs_per_second() const {
    std::vector<double> v;
    for (const RepResult* r : ok_reps())
        if (r->stream_msgs > 0 && r->stream_seconds > 0)
            v.push_back(static_cast<double>(r->stream_msgs) / r->stream_seconds);
    return spread_of(v);
}

Spread CaseResult::mib_per_second() const {
    Spread s = msgs_per_second();
    const double k = static_cast<double>(size) / (1024.0 * 1024.0);
    return {s.median * k, s.min * k, s.max * k};
}

const CaseResult* TransportResult::find(const std::string& placement, std::size_t size) const {
    for (const CaseResult& c : cases)
        if (c.placement.name == placement && c.size == size) return &c;
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Tables

namespace {

struct Table {
    std::string title;
    std::vector<std::string> headers;
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> footnotes;
};

// Display width of a UTF-8 string (counts code points; all ours are one column wide).
std::size_t width(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xc0) != 0x80) ++n;
    return n;
}

std::string render(const Table& t, bool pad) {
    std::vector<std::size_t> w(t.headers.size(), 3);
    if (pad) {
        for (std::size_t i = 0; i < t.headers.size(); ++i)
            w[i] = std::max(w[i], width(t.headers[i]));
        for (const auto& row : t.rows)
            for (std::size_t i = 0; i < row.size() && i < w.size(); ++i)
                w[i] = std::max(w[i], width(row[i]));
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string s = "|";
        for (std::size_t i = 0; i < t.headers.size(); ++i) {
            const std::string cell = i < cells.size() ? cells[i] : "";
            s += " " + cell;
            if (pad) s += std::string(w[i] - std::min(w[i], width(cell)), ' ');
            s += " |";
        }
        return s + "\n";
    };
    std::string out = "### " + t.title + "\n\n" + line(t.headers);
    std::vector<std::string> sep;
    for (std::size_t i = 0; i < t.headers.size(); ++i)
        sep.push_back(i < 2 || t.headers[i] == "note" ? std::string(pad ? w[i] : 3, '-')
                                                      : std::string(pad ? w[i] - 1 : 3, '-') + ":");
    out += line(sep);
    for (const auto& row : t.rows)
        out += line(row);
    if (!t.footnotes.empty()) {
        out += "\n";
        for (const std::string& f : t.footnotes)
            out += f + "\n";
    }
    return out + "\n";
}

// Best p50 (lowest) / throughput (highest) of a group at a placement and size.
double best_p50(const std::vector<TransportResult>& results, const std::string& group,
                const std::string& placement, std::size_t size) {
    double best = std::numeric_limits<double>::infinity();
    for (const TransportResult& t : results) {
        if (t.group != group) continue;
        const CaseResult* c = t.find(placement, size);
        if (c != nullptr && c->has_latency()) best = std::min(best, c->latency(1).median);
    }
    return best;
}

double best_rate(const std::vector<TransportResult>& results, const std::string& group,
                 const std::string& placement, std::size_t size) {
    double best = 0;
    for (const TransportResult& t : results) {
        if (t.group != group) continue;
        const CaseResult* c = t.find(placement, size);
        if (c != nullptr && c->has_stream()) best = std::max(best, c->msgs_per_second().median);
    }
    return best;
}

std::string case_note(const TransportResult& t, const CaseResult* c) {
    if (!t.reason.empty()) return t.reason;
    if (c == nullptr) return "not run";
    if (!c->reason.empty()) return "failed: " + c->reason;
    return c->note;
}

Table latency_table(const RunInfo& run, const std::vector<TransportResult>& results) {
    Table t;
    t.title = "Round-trip latency, " + size_label(run.main_size) +
              ", µs — median of repetitions [min–max]";
    t.headers = {"transport", "placement",    "RTTs/rep",         "min", "p50", "p99", "p99.9",
                 "max",       "p50 vs floor", "p50 vs best peer", "note"};
    for (const TransportResult& tr : results) {
        if (!tr.reason.empty()) {
            t.rows.push_back({tr.name, "—", "—", "—", "—", "—", "—", "—", "—", "—", tr.reason});
            continue;
        }
        for (const char* placement : kPlacements) {
            const CaseResult* c = tr.find(placement, run.main_size);
            if (!tr.round_trips) {
                t.rows.push_back({tr.name, placement, "—", "—", "—", "—", "—", "—", "—", "—",
                                  "no round trips: one-way transport (see throughput)"});
                continue;
            }
            if (c == nullptr || !c->has_latency()) {
                t.rows.push_back(
                    {tr.name, placement, "—", "—", "—", "—", "—", "—", "—", "—", case_note(tr, c)});
                continue;
            }
            std::vector<double> counts;
            for (const RepResult* r : c->ok_reps())
                counts.push_back(static_cast<double>(r->rtts));
            const double p50 = c->latency(1).median;
            t.rows.push_back({tr.name, placement,
                              fmt_count(static_cast<std::uint64_t>(spread_of(counts).median)),
                              fmt_spread(c->latency(0)), fmt_spread(c->latency(1)),
                              fmt_spread(c->latency(2)), fmt_spread(c->latency(3)),
                              fmt_spread(c->latency(4)),
                              fmt_ratio(p50 / best_p50(results, "floor", placement, run.main_size)),
                              fmt_ratio(p50 / best_p50(results, "peer", placement, run.main_size)),
                              case_note(tr, c)});
        }
    }
    t.footnotes.push_back(
        "\"vs floor\": p50 divided by the lowest p50 of the bench's own floors (the *_line and "
        "*_ring rows) at the same placement; \"vs best peer\": divided by the lowest p50 among "
        "the other peers (not floors, not veridian-ipc).");
    return t;
}

Table throughput_table(const RunInfo& run, const std::vector<TransportResult>& results) {
    Table t;
    t.title = "One-way throughput, " + size_label(run.main_size) +
              " messages — median of repetitions [min–max]";
    t.headers = {"transport", "placement", "msgs/rep",     "M msgs/s",
                 "MiB/s",     "vs floor",  "vs best peer", "note"};
    for (const TransportResult& tr : results) {
        if (!tr.reason.empty()) {
            t.rows.push_back({tr.name, "—", "—", "—", "—", "—", "—", tr.reason});
            continue;
        }
        for (const char* placement : kPlacements) {
            const CaseResult* c = tr.find(placement, run.main_size);
            if (!tr.streams) {
                t.rows.push_back({tr.name, placement, "—", "—", "—", "—", "—",
                                  "no stream: request/reply only (see latency)"});
                continue;
            }
            if (c == nullptr || !c->has_stream()) {
                t.rows.push_back({tr.name, placement, "—", "—", "—", "—", "—", case_note(tr, c)});
                continue;
            }
            std::vector<double> counts;
            for (const RepResult* r : c->ok_reps())
                counts.push_back(static_cast<double>(r->stream_msgs));
            Spread m = c->msgs_per_second();
            const double rate = m.median;
            m = {m.median / 1e6, m.min / 1e6, m.max / 1e6};
            t.rows.push_back(
                {tr.name, placement,
                 fmt_count(static_cast<std::uint64_t>(spread_of(counts).median)), fmt_spread(m),
                 fmt_spread(c->mib_per_second()),
                 fmt_ratio(rate / best_rate(results, "floor", placement, run.main_size)),
                 fmt_ratio(rate / best_rate(results, "peer", placement, run.main_size)),
                 case_note(tr, c)});
        }
    }
    t.footnotes.push_back(
        "The sender streams messages (each one send call) until its count or time bound, the "
        "receiver checks their order and acknowledges the last; rate = messages / time to the "
        "acknowledgement. \"vs\" columns: rate divided by the best floor / best other peer.");
    return t;
}

std::vector<Table> sweep_tables(const RunInfo& run, const std::vector<TransportResult>& results) {
    std::vector<Table> tables;
    for (const char* placement : kPlacements) {
        bool any = false;
        for (const TransportResult& tr : results)
            for (const CaseResult& c : tr.cases)
                if (c.placement.name == placement && c.size != run.main_size) any = true;
        if (!any) continue;
        // kind 0: round-trip p50, 1: round-trip p99, 2: one-way throughput.
        for (int kind = 0; kind < 3; ++kind) {
            Table t;
            t.title = std::string("Size sweep, ") + placement +
                      (kind == 0   ? ": round-trip p50, µs (median of repetitions)"
                       : kind == 1 ? ": round-trip p99, µs (median of repetitions)"
                                   : ": one-way throughput, MiB/s (median of repetitions)");
            t.headers = {"transport", "carries up to"};
            for (std::size_t s : run.sweep_sizes)
                t.headers.push_back(size_label(s));
            int footnote = 0;
            for (const TransportResult& tr : results) {
                if ((kind < 2 && !tr.round_trips) || (kind == 2 && !tr.streams)) continue;
                std::vector<std::string> row = {tr.name, "—"};
                if (!tr.reason.empty()) {
                    for (std::size_t i = 0; i < run.sweep_sizes.size(); ++i)
                        row.push_back("—");
                    row.back() = "not run";
                    t.rows.push_back(row);
                    continue;
                }
                for (std::size_t s : run.sweep_sizes) {
                    const CaseResult* c = tr.find(placement, s);
                    if (c == nullptr) {
                        row.push_back("n/a");
                        continue;
                    }
                    const bool has = kind < 2 ? c->has_latency() : c->has_stream();
                    if (!has) {
                        row.push_back("failed [" + std::to_string(++footnote) + "]");
                        t.footnotes.push_back("[" + std::to_string(footnote) + "] " + tr.name +
                                              ", " + size_label(s) + ": " + case_note(tr, c));
                    } else {
                        row.push_back(fmt_num(kind < 2 ? c->latency(kind + 1).median
                                                       : c->mib_per_second().median));
                    }
                }
                row[1] = tr.max_message_size > 0 ? size_label(tr.max_message_size) : "—";
                t.rows.push_back(row);
            }
            if (footnote == 0 && t.footnotes.empty())
                t.footnotes.push_back("n/a: the transport does not carry messages of that size.");
            else
                t.footnotes.insert(t.footnotes.begin(),
                                   "n/a: the transport does not carry messages of that size.");
            if (kind == 2)
                t.footnotes.push_back(
                    "MiB/s = message size × messages per second. veridian_loan hands chunks "
                    "over without touching their bytes (beyond the 9 the harness checks): its "
                    "MiB/s are bytes made available, the others' are bytes copied.");
            tables.push_back(t);
        }
    }
    return tables;
}

// ---- Targets ----------------------------------------------------------------------------------
//
// The data path's targets, each a ratio of two medians of this run (same placement, same size
// unless said). A target whose rows or size did not run says so instead of a verdict.

const TransportResult* find_transport(const std::vector<TransportResult>& results,
                                      const std::string& name) {
    for (const TransportResult& t : results)
        if (t.name == name) return &t;
    return nullptr;
}

// A median of one row at one placement and size, or why there is none.
struct Measure {
    double value = 0;
    std::string missing;  // empty when value is valid
};

enum class Metric { p50, rate };

Measure measure(const std::vector<TransportResult>& results, const std::string& name,
                const std::string& placement, std::size_t size, Metric metric) {
    const TransportResult* t = find_transport(results, name);
    if (t == nullptr) return {0, name + " not in this run"};
    if (!t->reason.empty()) return {0, name + " did not run (its row says why)"};
    const CaseResult* c = t->find(placement, size);
    if (c == nullptr) return {0, name + " " + size_label(size) + " " + placement + " not run"};
    if (metric == Metric::p50 ? !c->has_latency() : !c->has_stream())
        return {0, name + " " + size_label(size) + " " + placement + ": " + case_note(*t, c)};
    return {metric == Metric::p50 ? c->latency(1).median : c->msgs_per_second().median, {}};
}

std::string fmt_us(double v) {
    return fmt_num(v) + " µs";
}

std::string fmt_rate(double v) {
    return fmt_num(v / 1e6) + " M/s";
}

// "0.07× (1/14.3)" for ratios below 1 where "1/x" reads better.
std::string fmt_fraction(double r) {
    if (!(r > 0) || !std::isfinite(r)) return "—";
    return fmt_ratio(r) + " (1/" + fmt_num(1 / r) + ")";
}

enum class Bound { at_most, at_least };

struct Targets {
    Table table;
    const RunInfo& run;
    const std::vector<TransportResult>& results;

    bool in_sweep(std::size_t size) const {
        return size == run.main_size || std::find(run.sweep_sizes.begin(), run.sweep_sizes.end(),
                                                  size) != run.sweep_sizes.end();
    }

    void no_data(const std::string& target, const std::string& required, const std::string& why) {
        table.rows.push_back({target, "—", required, "no data", why});
    }

    // value(a) / value(b) against `limit`.
    void ratio(const std::string& target, const Measure& a, const Measure& b, Bound bound,
               double limit, const std::string& numbers_a, const std::string& numbers_b,
               bool as_fraction = false) {
        const std::string required =
            (bound == Bound::at_most ? "≤ " : "≥ ") +
            (as_fraction ? "1/" + fmt_num(1 / limit) : fmt_num(limit) + "×");
        if (!a.missing.empty()) return no_data(target, required, a.missing);
        if (!b.missing.empty()) return no_data(target, required, b.missing);
        const double r = a.value / b.value;
        const bool met = bound == Bound::at_most ? r <= limit : r >= limit;
        std::string verdict = met ? "met" : "not met";
        if (run.reps < 3) verdict += " (only " + std::to_string(run.reps) + " repetitions)";
        table.rows.push_back({target, as_fraction ? fmt_fraction(r) : fmt_ratio(r), required,
                              verdict, numbers_a + " vs " + numbers_b});
    }

    void p50_ratio(const std::string& target, const std::string& a, const std::string& b,
                   const std::string& placement, std::size_t size_a, std::size_t size_b,
                   double limit) {
        const Measure ma = measure(results, a, placement, size_a, Metric::p50);
        const Measure mb = measure(results, b, placement, size_b, Metric::p50);
        ratio(target, ma, mb, Bound::at_most, limit,
              a + " " + size_label(size_a) + " " + fmt_us(ma.value),
              b + " " + size_label(size_b) + " " + fmt_us(mb.value));
    }

    void rate_ratio(const std::string& target, const std::string& a, const std::string& b,
                    std::size_t size, double limit) {
        const Measure ma = measure(results, a, "cross-core", size, Metric::rate);
        const Measure mb = measure(results, b, "cross-core", size, Metric::rate);
        ratio(target, ma, mb, Bound::at_least, limit, a + " " + fmt_rate(ma.value),
              b + " " + fmt_rate(mb.value));
    }

    // veridian_loan p50 / the lowest p50 of every peer that carries `size`.
    void loan_vs_peers(std::size_t size) {
        const std::string target = "loan p50 " + size_label(size) + " vs every peer";
        const std::string required = "≤ 1/5";
        if (!in_sweep(size)) return no_data(target, required, "size not in this run's sweep");
        const Measure loan = measure(results, "veridian_loan", "cross-core", size, Metric::p50);
        Measure best{0, "no peer carried " + size_label(size)};
        std::string best_name;
        for (const TransportResult& t : results) {
            if (t.group != "peer" || !t.round_trips || t.max_message_size < size) continue;
            const Measure m = measure(results, t.name, "cross-core", size, Metric::p50);
            if (m.missing.empty() && (!best.missing.empty() || m.value < best.value)) {
                best = m;
                best_name = t.name;
            }
        }
        ratio(target, loan, best, Bound::at_most, 0.2, "veridian_loan " + fmt_us(loan.value),
              "best peer " + best_name + " " + fmt_us(best.value), true);
    }
};

Table targets_table(const RunInfo& run, const std::vector<TransportResult>& results) {
    Targets g{Table{}, run, results};
    g.table.title = "Targets: ratios of medians of this run (cross-core unless said)";
    g.table.headers = {"target", "measured", "required", "result", "numbers (medians)"};
    constexpr std::size_t kKiB = 1024, kMiB = 1024 * 1024;
    const std::size_t main = run.main_size;

    // Inline records: round trip vs the one-line spin floor copying the same bytes.
    bool any_inline = false;
    for (std::size_t size : run.sweep_sizes) {
        if (size < 8 || size > 64 * kKiB) continue;
        any_inline = true;
        g.p50_ratio("inline p50 " + size_label(size) + " vs spin_line", "veridian_inline",
                    "spin_line", "cross-core", size, size, 1.25);
    }
    if (!any_inline)
        g.no_data("inline p50 8 B..64 KiB vs spin_line", "≤ 1.25×", "no size of 8 B..64 KiB run");
    for (std::size_t size : {512 * std::size_t{1}, 4 * kKiB}) {
        const std::string target = "inline stream " + size_label(size) + " vs spin_ring";
        if (!g.in_sweep(size))
            g.no_data(target, "≥ 0.8×", "size not in this run's sweep");
        else
            g.rate_ratio(target, "veridian_inline", "spin_ring", size, 0.8);
    }

    // Loans: flat in size, and far below every peer from 32 KiB on.
    for (std::size_t size : {kMiB, 64 * kMiB}) {
        const std::string target = "loan p50 " + size_label(size) + " vs loan " + size_label(main);
        if (!g.in_sweep(size))
            g.no_data(target, "≤ 1.5×", "size not in this run's sweep");
        else
            g.p50_ratio(target, "veridian_loan", "veridian_loan", "cross-core", size, main, 1.5);
    }
    bool any_large = false;
    for (std::size_t size : run.sweep_sizes) {
        if (size < 32 * kKiB) continue;
        bool peer_carries = false;
        for (const TransportResult& t : results)
            if (t.group == "peer" && t.max_message_size >= size) peer_carries = true;
        if (!peer_carries) continue;
        any_large = true;
        g.loan_vs_peers(size);
    }
    if (!any_large) g.no_data("loan p50 ≥ 32 KiB vs every peer", "≤ 1/5", "no size ≥ 32 KiB run");

    // 48-byte streaming against the Lamport ring floor; async never slower than sync.
    g.rate_ratio("send_async stream " + size_label(main) + " vs spin_ring", "veridian_async",
                 "spin_ring", main, 0.8);
    g.rate_ratio("fast_send stream " + size_label(main) + " vs spin_ring", "veridian_small",
                 "spin_ring", main, 0.8);
    g.rate_ratio("send_async stream vs send_sync stream", "veridian_async", "veridian_sync", main,
                 1.0);

    // 48-byte round trips at the physical floor.
    g.p50_ratio("fast_send p50 vs spin_line", "veridian_small", "spin_line", "cross-core", main,
                main, 1.25);
    g.p50_ratio("call/reply p50 vs spin_line", "veridian_call", "spin_line", "cross-core", main,
                main, 1.25);
    g.p50_ratio("fast_send p50 same-core vs yield_line", "veridian_small", "yield_line",
                "same-core", main, main, 1.2);
    g.p50_ratio("call/reply p50 same-core vs yield_line", "veridian_call", "yield_line",
                "same-core", main, main, 1.2);

    g.table.footnotes.push_back(
        "Each number is the median over the run's repetitions of one case (p50 of its round "
        "trips, or its stream rate); a ratio divides two such medians of this run. spin_line: "
        "one 64-byte line per direction, copying the same bytes; spin_ring: the Lamport ring "
        "caching the opposite index; yield_line: spin_line with sched_yield. The loan rows touch "
        "only the bytes the harness checks (see docs/PERFORMANCE.md); the peers copy all.");
    return g.table;
}

std::string run_header(const RunInfo& run) {
    std::ostringstream s;
    s << "- command: `" << run.command << "`\n";
    s << "- started: " << run.started_utc << ", took " << fmt_num(run.seconds) << " s\n";
    s << "- machine: " << run.machine << "\n";
    if (!run.load_at_start.empty())
        s << "- load average (1, 5, 15 min): " << run.load_at_start << " at the start, "
          << run.load_at_end << " at the end (the bench itself keeps up to 2 cpus busy)\n";
    s << "- mode: " << (run.quick ? "quick" : "full") << "; " << run.reps
      << " repetitions per case; per repetition at " << size_label(run.main_size) << ": warm-up "
      << run.main_limits.warmup_rtts << " RTTs / " << fmt_num(run.main_limits.warmup_seconds)
      << " s, then up to " << run.main_limits.rtts << " RTTs / "
      << fmt_num(run.main_limits.latency_seconds) << " s, then a stream of up to "
      << run.main_limits.stream_msgs << " messages / " << fmt_num(run.main_limits.stream_seconds)
      << " s (whichever bound comes first)\n";
    s << "- queues: depth 1024 where the transport has one, less where that would exceed 64 MiB "
         "(e.g. 64 at 1 MiB) or a limit applies (see the note)\n";
    s << "- placement: cross-core = client and server pinned to two different cpus; same-core = "
         "both pinned to one cpu\n";
    return s.str();
}

std::string all_tables(const RunInfo& run, const std::vector<TransportResult>& results, bool pad) {
    std::string out = render(targets_table(run, results), pad);
    out += render(latency_table(run, results), pad);
    out += render(throughput_table(run, results), pad);
    for (const Table& t : sweep_tables(run, results))
        out += render(t, pad);
    return out;
}

bool write_file(const std::string& path, const std::string& text, std::string* error) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (f) f << text;
    if (!f) {
        *error = "cannot write " + path + ": check that its directory exists and is writable";
        return false;
    }
    return true;
}

}  // namespace

void print_terminal(std::FILE* out, const RunInfo& run,
                    const std::vector<TransportResult>& results) {
    std::fprintf(out, "\nvipc bench results\n\n%s\n%s", run_header(run).c_str(),
                 all_tables(run, results, true).c_str());
    std::fflush(out);
}

bool write_markdown(const std::string& path, const RunInfo& run,
                    const std::vector<TransportResult>& results, std::string* error) {
    std::string text = "## vipc bench results\n\n" + run_header(run) + "\n";
    text += "Transports:\n\n";
    for (const TransportResult& t : results)
        text += "- `" + t.name + "` (" + t.group + "): " + t.description + "\n";
    text += "\n" + all_tables(run, results, true);
    return write_file(path, text, error);
}

// ---------------------------------------------------------------------------------------------
// JSON

namespace {

// The command line's JSON writer (tools/vipc/json_writer.hpp): one quoting for both.
std::string json_string(const std::string& s) {
    return vipc::json::quote(s);
}

std::string json_number(double v) {
    return vipc::json::number_significant(v, 6);
}

std::string json_spread(const Spread& s) {
    return "{\"median\": " + json_number(s.median) + ", \"min\": " + json_number(s.min) +
           ", \"max\": " + json_number(s.max) + "}";
}

std::string json_limits(const PhaseLimits& l) {
    std::ostringstream s;
    s << "{\"warmup_rtts\": " << l.warmup_rtts
      << ", \"warmup_seconds\": " << json_number(l.warmup_seconds) << ", \"rtts\": " << l.rtts
      << ", \"latency_seconds\": " << json_number(l.latency_seconds)
      << ", \"stream_msgs\": " << l.stream_msgs
      << ", \"stream_seconds\": " << json_number(l.stream_seconds)
      << ", \"case_timeout_seconds\": " << json_number(l.case_timeout_seconds) << "}";
    return s.str();
}

}  // namespace

bool write_json(const std::string& path, const RunInfo& run,
                const std::vector<TransportResult>& results, std::string* error) {
    std::ostringstream j;
    j << "{\n  \"tool\": \"vipc bench\",\n  \"format_version\": 1,\n";
    j << "  \"command\": " << json_string(run.command) << ",\n";
    j << "  \"started_utc\": " << json_string(run.started_utc) << ",\n";
    j << "  \"seconds\": " << json_number(run.seconds) << ",\n";
    j << "  \"machine\": " << json_string(run.machine) << ",\n";
    j << "  \"quick\": " << (run.quick ? "true" : "false") << ",\n";
    j << "  \"reps\": " << run.reps << ",\n";
    j << "  \"main_size\": " << run.main_size << ",\n";
    j << "  \"sweep_sizes\": [";
    for (std::size_t i = 0; i < run.sweep_sizes.size(); ++i)
        j << (i ? ", " : "") << run.sweep_sizes[i];
    j << "],\n";
    j << "  \"main_limits\": " << json_limits(run.main_limits) << ",\n";
    j << "  \"sweep_limits\": " << json_limits(run.sweep_limits) << ",\n";
    j << "  \"latency_unit\": \"us\",\n  \"throughput_unit\": \"msgs/s\",\n";
    j << "  \"transports\": [\n";
    for (std::size_t ti = 0; ti < results.size(); ++ti) {
        const TransportResult& t = results[ti];
        j << "    {\n      \"name\": " << json_string(t.name) << ",\n";
        j << "      \"description\": " << json_string(t.description) << ",\n";
        j << "      \"group\": " << json_string(t.group) << ",\n";
        j << "      \"round_trips\": " << (t.round_trips ? "true" : "false") << ",\n";
        j << "      \"streams\": " << (t.streams ? "true" : "false") << ",\n";
        j << "      \"max_message_size\": " << t.max_message_size << ",\n";
        j << "      \"status\": " << json_string(t.reason.empty() ? "ran" : "not_run") << ",\n";
        j << "      \"reason\": " << (t.reason.empty() ? "null" : json_string(t.reason)) << ",\n";
        j << "      \"cases\": [";
        for (std::size_t ci = 0; ci < t.cases.size(); ++ci) {
            const CaseResult& c = t.cases[ci];
            j << (ci ? "," : "") << "\n        {\"placement\": " << json_string(c.placement.name)
              << ", \"client_cpu\": " << c.placement.client_cpu
              << ", \"server_cpu\": " << c.placement.server_cpu << ", \"size\": " << c.size
              << ",\n         \"status\": " << json_string(c.reason.empty() ? "ok" : "failed")
              << ", \"reason\": " << (c.reason.empty() ? "null" : json_string(c.reason))
              << ", \"note\": " << (c.note.empty() ? "null" : json_string(c.note));
            j << ",\n         \"reps\": [";
            for (std::size_t ri = 0; ri < c.reps.size(); ++ri) {
                const RepResult& r = c.reps[ri];
                j << (ri ? ", " : "") << "{\"ok\": " << (r.ok ? "true" : "false")
                  << ", \"wall_seconds\": " << json_number(r.wall_seconds);
                if (!r.ok) j << ", \"reason\": " << json_string(r.reason);
                if (r.ok && r.rtts > 0)
                    j << ", \"rtts\": " << r.rtts << ", \"min\": " << json_number(r.min)
                      << ", \"p50\": " << json_number(r.p50) << ", \"p99\": " << json_number(r.p99)
                      << ", \"p999\": " << json_number(r.p999)
                      << ", \"max\": " << json_number(r.max);
                if (r.ok && r.stream_msgs > 0)
                    j << ", \"stream_msgs\": " << r.stream_msgs
                      << ", \"stream_seconds\": " << json_number(r.stream_seconds);
                j << "}";
            }
            j << "]";
            if (c.has_latency()) {
                j << ",\n         \"latency_us\": {\"min\": " << json_spread(c.latency(0))
                  << ", \"p50\": " << json_spread(c.latency(1))
                  << ", \"p99\": " << json_spread(c.latency(2))
                  << ", \"p999\": " << json_spread(c.latency(3))
                  << ", \"max\": " << json_spread(c.latency(4)) << "}";
            }
            if (c.has_stream()) {
                j << ",\n         \"throughput_msgs_per_s\": " << json_spread(c.msgs_per_second())
                  << ",\n         \"throughput_mib_per_s\": " << json_spread(c.mib_per_second());
            }
            j << "}";
        }
        j << (t.cases.empty() ? "]\n" : "\n      ]\n");
        j << "    }" << (ti + 1 < results.size() ? "," : "") << "\n";
    }
    j << "  ]\n}\n";
    return write_file(path, j.str(), error);
}

// ---------------------------------------------------------------------------------------------
// SVG plots

namespace {

const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                         "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
                         "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"};

std::string esc(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else if (c == '&')
            out += "&amp;";
        else if (c == '"')
            out += "&quot;";
        else
            out += c;
    }
    return out;
}

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

// A logarithmic axis: decades from 10^lo to 10^hi mapped onto [x0, x1].
struct LogAxis {
    int lo = 0, hi = 1;
    double x0 = 0, x1 = 1;
    static LogAxis fit(double vmin, double vmax, double x0, double x1) {
        LogAxis a;
        if (!(vmin > 0)) vmin = 1;
        if (!(vmax > vmin)) vmax = vmin * 10;
        a.lo = static_cast<int>(std::floor(std::log10(vmin)));
        a.hi = static_cast<int>(std::ceil(std::log10(vmax)));
        if (a.hi <= a.lo) a.hi = a.lo + 1;
        a.x0 = x0;
        a.x1 = x1;
        return a;
    }
    double map(double v) const {
        if (!(v > 0)) return x0;
        const double t = (std::log10(v) - lo) / (hi - lo);
        return x0 + std::clamp(t, 0.0, 1.0) * (x1 - x0);
    }
};

std::string decade_label(int e) {
    if (e < 0) return "0." + std::string(static_cast<std::size_t>(-e - 1), '0') + "1";
    static const char* const kSuffix[] = {"", "k", "M", "G"};
    if (e < 12) return "1" + std::string(static_cast<std::size_t>(e % 3), '0') + kSuffix[e / 3];
    return "1e" + std::to_string(e);
}

// A bar per (transport, placement); for latency, a p50 bar with the p99 as a lighter bar
// behind it and the p50's min–max across repetitions as a whisker.
struct BarRow {
    std::string label;
    std::string reason;                     // when there is no bar
    double value[2] = {0, 0};               // per placement: p50 (or rate)
    double back[2] = {0, 0};                // per placement: p99 (latency only)
    double lo[2] = {0, 0}, hi[2] = {0, 0};  // whisker
};

std::string bar_chart(const std::string& title, const std::string& axis_title,
                      const std::vector<BarRow>& rows, bool with_back, bool lower_is_better) {
    const double left = 150, right = 1000 - 20, top = 80, row_h = 34;
    const double height = top + row_h * static_cast<double>(rows.size()) + 60;
    double vmin = std::numeric_limits<double>::infinity(), vmax = 0;
    for (const BarRow& r : rows)
        for (int p = 0; p < 2; ++p)
            for (double v : {r.value[p], r.back[p], r.lo[p], r.hi[p]})
                if (v > 0) {
                    vmin = std::min(vmin, v);
                    vmax = std::max(vmax, v);
                }
    const LogAxis ax = LogAxis::fit(vmin, vmax, left, right);
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1000\" height=\"" << num(height)
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    s << "<text x=\"500\" y=\"22\" text-anchor=\"middle\" font-size=\"16\">" << esc(title)
      << "</text>\n";
    // Legend.
    const char* placement_colors[2] = {"#1f77b4", "#ff7f0e"};
    double lx = left;
    for (int p = 0; p < 2; ++p) {
        s << "<rect x=\"" << num(lx) << "\" y=\"34\" width=\"14\" height=\"10\" fill=\""
          << placement_colors[p] << "\"/><text x=\"" << num(lx + 18) << "\" y=\"43\">"
          << kPlacements[p] << (with_back ? " p50" : "") << "</text>\n";
        lx += 130;
        if (with_back) {
            s << "<rect x=\"" << num(lx) << "\" y=\"34\" width=\"14\" height=\"10\" fill=\""
              << placement_colors[p] << "\" fill-opacity=\"0.3\"/><text x=\"" << num(lx + 18)
              << "\" y=\"43\">" << kPlacements[p] << " p99</text>\n";
            lx += 130;
        }
    }
    s << "<text x=\"" << num(left) << "\" y=\"60\" fill=\"#555\">whisker: min–max of the "
      << (with_back ? "p50" : "rate") << " over repetitions; "
      << (lower_is_better ? "lower is better" : "higher is better") << "; log scale</text>\n";
    // Grid.
    for (int e = ax.lo; e <= ax.hi; ++e) {
        const double x = ax.map(std::pow(10.0, e));
        s << "<line x1=\"" << num(x) << "\" y1=\"" << num(top - 6) << "\" x2=\"" << num(x)
          << "\" y2=\"" << num(height - 50) << "\" stroke=\"#ddd\"/>\n";
        s << "<text x=\"" << num(x) << "\" y=\"" << num(height - 34) << "\" text-anchor=\"middle\">"
          << decade_label(e) << "</text>\n";
    }
    s << "<text x=\"" << num((left + right) / 2) << "\" y=\"" << num(height - 12)
      << "\" text-anchor=\"middle\">" << esc(axis_title) << "</text>\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const BarRow& r = rows[i];
        const double y = top + row_h * static_cast<double>(i);
        s << "<text x=\"" << num(left - 6) << "\" y=\"" << num(y + row_h / 2 + 4)
          << "\" text-anchor=\"end\">" << esc(r.label) << "</text>\n";
        if (!r.reason.empty()) {
            s << "<text x=\"" << num(left + 6) << "\" y=\"" << num(y + row_h / 2 + 4)
              << "\" fill=\"#a00\">" << esc(r.reason.substr(0, 120)) << "</text>\n";
            continue;
        }
        for (int p = 0; p < 2; ++p) {
            const double by = y + 3 + p * 14;
            if (with_back && r.back[p] > 0)
                s << "<rect x=\"" << num(left) << "\" y=\"" << num(by) << "\" width=\""
                  << num(ax.map(r.back[p]) - left) << "\" height=\"12\" fill=\""
                  << placement_colors[p] << "\" fill-opacity=\"0.3\"/>\n";
            if (r.value[p] > 0) {
                s << "<rect x=\"" << num(left) << "\" y=\"" << num(by) << "\" width=\""
                  << num(ax.map(r.value[p]) - left) << "\" height=\"12\" fill=\""
                  << placement_colors[p] << "\"/>\n";
                s << "<line x1=\"" << num(ax.map(r.lo[p])) << "\" y1=\"" << num(by + 6)
                  << "\" x2=\"" << num(ax.map(r.hi[p])) << "\" y2=\"" << num(by + 6)
                  << "\" stroke=\"black\"/>\n";
                const double tx = std::max(ax.map(r.value[p]), with_back ? ax.map(r.back[p]) : 0);
                s << "<text x=\"" << num(tx + 4) << "\" y=\"" << num(by + 10)
                  << "\" font-size=\"10\">" << fmt_num(r.value[p]) << "</text>\n";
            } else {
                s << "<text x=\"" << num(left + 4) << "\" y=\"" << num(by + 10)
                  << "\" font-size=\"10\" fill=\"#a00\">" << kPlacements[p]
                  << ": no result</text>\n";
            }
        }
    }
    s << "<line x1=\"" << num(left) << "\" y1=\"" << num(top - 6) << "\" x2=\"" << num(left)
      << "\" y2=\"" << num(height - 50) << "\" stroke=\"black\"/>\n</svg>\n";
    return s.str();
}

// Log-log lines: one per transport, x = message size, y = value.
struct Series {
    std::string name;
    std::vector<double> values;  // per size; 0 = no result
    bool dashed = false;         // the bench's own floors
};

std::string line_chart(const std::string& title, const std::string& y_title,
                       const std::vector<std::size_t>& sizes, const std::vector<Series>& series,
                       const std::string& footer) {
    const double left = 80, right = 760, top = 50, bottom = 520;
    double vmin = std::numeric_limits<double>::infinity(), vmax = 0;
    for (const Series& line : series)
        for (double v : line.values)
            if (v > 0) {
                vmin = std::min(vmin, v);
                vmax = std::max(vmax, v);
            }
    const LogAxis yax = LogAxis::fit(vmin, vmax, 0, 1);
    auto ymap = [&](double v) { return bottom - yax.map(v) * (bottom - top); };
    auto xmap = [&](std::size_t i) {
        return sizes.size() < 2 ? (left + right) / 2
                                : left + (right - left) * static_cast<double>(i) /
                                             static_cast<double>(sizes.size() - 1);
    };
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1000\" height=\"585\" "
         "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
         "fill=\"white\"/>\n";
    s << "<text x=\"420\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">" << esc(title)
      << "</text>\n";
    for (int e = yax.lo; e <= yax.hi; ++e) {
        const double y = ymap(std::pow(10.0, e));
        s << "<line x1=\"" << num(left) << "\" y1=\"" << num(y) << "\" x2=\"" << num(right)
          << "\" y2=\"" << num(y) << "\" stroke=\"#ddd\"/><text x=\"" << num(left - 6) << "\" y=\""
          << num(y + 4) << "\" text-anchor=\"end\">" << decade_label(e) << "</text>\n";
    }
    for (std::size_t i = 0; i < sizes.size(); ++i)
        s << "<text x=\"" << num(xmap(i)) << "\" y=\"" << num(bottom + 18)
          << "\" text-anchor=\"middle\">" << size_label(sizes[i]) << "</text>\n";
    s << "<text x=\"" << num((left + right) / 2) << "\" y=\"" << num(bottom + 42)
      << "\" text-anchor=\"middle\">message size</text>\n";
    s << "<text transform=\"translate(18," << num((top + bottom) / 2)
      << ") rotate(-90)\" text-anchor=\"middle\">" << esc(y_title) << " (log scale)</text>\n";
    s << "<rect x=\"" << num(left) << "\" y=\"" << num(top) << "\" width=\"" << num(right - left)
      << "\" height=\"" << num(bottom - top) << "\" fill=\"none\" stroke=\"black\"/>\n";
    for (std::size_t k = 0; k < series.size(); ++k) {
        const char* color = kColors[k % (sizeof kColors / sizeof kColors[0])];
        const std::string& name = series[k].name;
        const std::vector<double>& values = series[k].values;
        const char* dash = series[k].dashed ? "\" stroke-dasharray=\"6 3" : "";
        std::string path;
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (!(values[i] > 0)) continue;
            path += (path.empty() ? "M" : " L") + num(xmap(i)) + " " + num(ymap(values[i]));
            s << "<circle cx=\"" << num(xmap(i)) << "\" cy=\"" << num(ymap(values[i]))
              << "\" r=\"3\" fill=\"" << color << "\"/>\n";
        }
        if (!path.empty())
            s << "<path d=\"" << path << "\" fill=\"none\" stroke=\"" << color << dash
              << "\" stroke-width=\"2\"/>\n";
        const double ly = top + 16 * static_cast<double>(k);
        s << "<line x1=\"780\" y1=\"" << num(ly) << "\" x2=\"800\" y2=\"" << num(ly)
          << "\" stroke=\"" << color << dash << "\" stroke-width=\"3\"/><text x=\"806\" y=\""
          << num(ly + 4) << "\">" << esc(name) << (path.empty() ? " (no result)" : "")
          << "</text>\n";
    }
    if (!footer.empty())
        s << "<text x=\"" << num(left) << "\" y=\"572\" fill=\"#a00\" font-size=\"11\">"
          << esc(footer.substr(0, 160)) << "</text>\n";
    s << "</svg>\n";
    return s.str();
}

}  // namespace

bool write_plots(const std::string& dir, const RunInfo& run,
                 const std::vector<TransportResult>& results, std::vector<std::string>* written,
                 std::string* error) {
    std::vector<BarRow> lat_rows, rate_rows;
    for (const TransportResult& t : results) {
        BarRow lat{.label = t.name, .reason = {}, .value = {}, .back = {}, .lo = {}, .hi = {}};
        BarRow rate = lat;
        if (!t.reason.empty()) {
            lat.reason = rate.reason = t.reason;
        } else {
            for (int p = 0; p < 2; ++p) {
                const CaseResult* c = t.find(kPlacements[p], run.main_size);
                if (c == nullptr) continue;
                if (c->has_latency()) {
                    const Spread p50 = c->latency(1);
                    lat.value[p] = p50.median;
                    lat.lo[p] = p50.min;
                    lat.hi[p] = p50.max;
                    lat.back[p] = c->latency(2).median;
                }
                if (c->has_stream()) {
                    const Spread m = c->msgs_per_second();
                    rate.value[p] = m.median / 1e6;
                    rate.lo[p] = m.min / 1e6;
                    rate.hi[p] = m.max / 1e6;
                }
            }
            if (!t.round_trips) lat.reason = "one-way transport: no round trips";
            if (!t.streams) rate.reason = "request/reply only: no stream";
        }
        lat_rows.push_back(lat);
        rate_rows.push_back(rate);
    }
    struct Out {
        std::string name, text;
    };
    std::vector<Out> files;
    files.push_back({"latency.svg", bar_chart("Round-trip latency, " + size_label(run.main_size) +
                                                  " (median of repetitions)",
                                              "microseconds", lat_rows, true, true)});
    files.push_back({"throughput.svg",
                     bar_chart("One-way throughput, " + size_label(run.main_size) + " messages",
                               "million messages per second", rate_rows, false, false)});
    if (run.sweep_sizes.size() > 1) {
        std::vector<Series> lat_series, rate_series;
        std::string not_run;
        for (const TransportResult& t : results) {
            if (!t.reason.empty()) {
                not_run += (not_run.empty() ? "not run: " : ", ") + t.name;
                continue;
            }
            std::vector<double> lat, rate;
            for (std::size_t s : run.sweep_sizes) {
                const CaseResult* c = t.find("cross-core", s);
                lat.push_back(c != nullptr && c->has_latency() ? c->latency(1).median : 0);
                rate.push_back(c != nullptr && c->has_stream() ? c->mib_per_second().median : 0);
            }
            const bool floor = t.group == "floor";
            if (t.round_trips) lat_series.push_back({t.name, lat, floor});
            if (t.streams) rate_series.push_back({t.name, rate, floor});
        }
        if (!not_run.empty()) not_run += " (see the tables for why)";
        files.push_back({"sweep_latency.svg",
                         line_chart("Round-trip p50 by message size, cross-core", "microseconds",
                                    run.sweep_sizes, lat_series, not_run)});
        files.push_back(
            {"sweep_throughput.svg", line_chart("One-way throughput by message size, cross-core",
                                                "MiB/s", run.sweep_sizes, rate_series, not_run)});
    }
    for (const Out& f : files) {
        const std::string path = dir + "/" + f.name;
        if (!write_file(path, f.text, error)) return false;
        written->push_back(path);
    }
    return true;
}

}  // namespace vipc::bench
