// The main job's report (--report FILE): one self-contained HTML page, with
// inline SVG charts and no script or network fetch, so that it opens anywhere
// and can be mailed or archived with the run. It shows every configuration's
// validation curve over training (a stopped one visibly ends at its rung), each
// device's utilisation over time, and the final table.
//
// The page is also well-formed XML (every element closed, every attribute
// quoted, text escaped), so a test can check its structure with a plain tag
// parser.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "hydra/hydra.hpp"
#include "sweep.hpp"

namespace model_selection {

namespace report_detail {

inline std::string escape(std::string const& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

inline std::string fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

// Twenty colours (Tableau's 20: ten hues, each dark then light); a larger
// search repeats them with a dashed line.
inline constexpr std::size_t palette_size = 20;
inline char const* colour(std::size_t k) {
  static constexpr char const* palette[palette_size] = {
      "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#79706e",
      "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#bab0ac"};
  return palette[k % palette_size];
}

// The share of each of `bins` equal spans of [0, makespan] that a task held
// each device's compute stream: each compute slice of the trace adds its
// overlap with every span. A slice spans the task's whole turn on the stream,
// its waits for data included, so this is at least the computing share.
inline std::vector<std::vector<double>> utilisation(std::vector<hydra::trace_slice> const& trace, std::size_t devices,
                                                    double makespan, std::size_t bins) {
  std::vector<std::vector<double>> busy(devices, std::vector<double>(bins, 0.0));
  if (makespan <= 0) return busy;
  double const width = makespan / static_cast<double>(bins);
  for (auto const& slice : trace) {
    if (slice.stream != hydra::stream_role::compute || slice.device >= devices) continue;
    double const start = std::chrono::duration<double>(slice.start).count();
    double const end = std::min(makespan, std::chrono::duration<double>(slice.end).count());
    for (auto b = static_cast<std::size_t>(std::max(0.0, start / width)); b < bins; ++b) {
      double const lo = static_cast<double>(b) * width, hi = lo + width;
      if (lo >= end) break;
      busy[slice.device][b] += std::max(0.0, std::min(end, hi) - std::max(start, lo)) / width;
    }
  }
  for (auto& row : busy)
    for (double& f : row) f = std::min(1.0, f);
  return busy;
}

} // namespace report_detail

// What the report needs beyond the outcome.
struct report_context {
  std::string title;              // one line: what was searched, and how
  std::size_t devices = 0;        // as many utilisation rows
  std::size_t total_steps = 0;    // a model's minibatches if it trains to the end: the curves' x range
  std::vector<std::size_t> order; // models in rank order (the table's rows)
};

inline void write_html_report(std::ostream& out, outcome const& result, report_context const& context) {
  using report_detail::escape;
  using report_detail::fixed;
  auto const& models = result.models;

  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
      << "<title>hydra model selection</title>\n<style>\n"
      << "body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }\n"
      << "table { border-collapse: collapse; font-size: 0.9em; }\n"
      << "th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: right; }\n"
      << "td.name, th.name, td.how, th.how { text-align: left; }\n"
      << "tr.chosen { background: #fff3c4; font-weight: bold; }\n"
      << "svg text { font-size: 12px; fill: #333; }\n"
      << ".legend span { display: inline-block; margin-right: 1.2em; white-space: nowrap; }\n"
      << ".swatch { display: inline-block; width: 1.5em; height: 0.3em; vertical-align: middle; margin-right: 0.3em; "
         "}\n"
      << "</style>\n</head>\n<body>\n";
  out << "<h1>Model selection</h1>\n<p>" << escape(context.title) << "</p>\n";
  if (result.chosen) {
    auto const& c = models[*result.chosen];
    out << "<p id=\"chosen\">Chosen by validation: <b>" << escape(c.config.name()) << "</b>, validation accuracy "
        << fixed(100 * c.validation->accuracy, 2) << "% on " << result.validation_images << " held-out images";
    if (c.tested)
      out << "; test accuracy " << fixed(100 * c.test_accuracy, 2) << "% on " << result.test_images << " test images";
    out << ".</p>\n";
  }
  out << "<p>Compute: " << result.minibatches_trained << " minibatches trained and " << result.minibatches_evaluated
      << " validated, all models together. Makespan " << fixed(result.makespan_seconds, 2) << " s.</p>\n";

  // ---- validation curves: accuracy against minibatches trained
  double const plot_w = 760, plot_h = 340, left = 60, top = 20;
  double low = 1.0, high = 0.0;
  for (auto const& m : models)
    for (auto const& p : m.validations)
      if (std::isfinite(p.metrics.accuracy))
        low = std::min(low, p.metrics.accuracy), high = std::max(high, p.metrics.accuracy);
  if (low > high) low = 0, high = 1;
  low = std::floor(low * 20) / 20;
  high = std::max(low + 0.05, std::ceil(high * 20) / 20);
  double const x_max = static_cast<double>(std::max<std::size_t>(1, context.total_steps));
  auto x_of = [&](double minibatches) { return left + plot_w * minibatches / x_max; };
  auto y_of = [&](double accuracy) { return top + plot_h * (high - accuracy) / (high - low); };

  out << "<h2>Validation accuracy over training</h2>\n"
      << "<p>One line per configuration, one point per checkpoint. A line that ends early is a configuration the "
         "search stopped (a cross) or one that failed; a circle marks one that trained to the end.</p>\n";
  out << "<svg id=\"curves\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << left + plot_w + 20 << "\" height=\""
      << top + plot_h + 50 << "\" role=\"img\">\n";
  for (int k = 0; k <= 4; ++k) { // grid and y labels
    double const a = low + (high - low) * k / 4.0;
    out << "<line x1=\"" << left << "\" x2=\"" << left + plot_w << "\" y1=\"" << fixed(y_of(a), 1) << "\" y2=\""
        << fixed(y_of(a), 1) << "\" stroke=\"#e4e4e4\"/>\n"
        << "<text x=\"" << left - 6 << "\" y=\"" << fixed(y_of(a) + 4, 1) << "\" text-anchor=\"end\">"
        << fixed(100 * a, 1) << "%</text>\n";
  }
  for (int k = 0; k <= 4; ++k) { // x labels
    double const mb = x_max * k / 4.0;
    out << "<text x=\"" << fixed(x_of(mb), 1) << "\" y=\"" << top + plot_h + 18 << "\" text-anchor=\"middle\">"
        << fixed(mb, 0) << "</text>\n";
  }
  out << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << top + plot_h + 40
      << "\" text-anchor=\"middle\">minibatches trained</text>\n";
  out << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << plot_h
      << "\" fill=\"none\" stroke=\"#999\"/>\n";
  for (std::size_t m = 0; m < models.size(); ++m) {
    auto const& model = models[m];
    std::string points;
    for (auto const& p : model.validations)
      if (std::isfinite(p.metrics.accuracy))
        points += fixed(x_of(static_cast<double>(p.minibatches)), 1) + "," +
                  fixed(y_of(std::clamp(p.metrics.accuracy, low, high)), 1) + " ";
    if (points.empty()) continue;
    bool const dashed = m >= report_detail::palette_size;
    out << "<g class=\"model\" data-model=\"" << escape(model.config.name()) << "\">\n<title>"
        << escape(model.config.name()) << "</title>\n<polyline fill=\"none\" stroke=\"" << report_detail::colour(m)
        << "\" stroke-width=\"" << (result.chosen == m ? 3 : 1.5) << "\"" << (dashed ? " stroke-dasharray=\"5,3\"" : "")
        << " points=\"" << points << "\"/>\n";
    auto const& last = model.validations.back();
    double const x = x_of(static_cast<double>(last.minibatches));
    double const y = y_of(std::clamp(std::isfinite(last.metrics.accuracy) ? last.metrics.accuracy : low, low, high));
    if (model.stopped_early || model.failure)
      out << "<path d=\"M" << fixed(x - 4, 1) << "," << fixed(y - 4, 1) << " l8,8 m0,-8 l-8,8\" stroke=\""
          << report_detail::colour(m) << "\" stroke-width=\"2\"/>\n";
    else
      out << "<circle cx=\"" << fixed(x, 1) << "\" cy=\"" << fixed(y, 1) << "\" r=\"4\" fill=\""
          << report_detail::colour(m) << "\"/>\n";
    out << "</g>\n";
  }
  out << "</svg>\n<p class=\"legend\">";
  for (std::size_t m = 0; m < models.size(); ++m)
    out << "<span><i class=\"swatch\" style=\"background: " << report_detail::colour(m) << "\"></i>"
        << escape(models[m].config.name()) << "</span>";
  out << "</p>\n";

  // ---- device utilisation: the share of each span a task held the compute stream
  constexpr std::size_t bins = 100;
  auto const held = report_detail::utilisation(result.trace, context.devices, result.makespan_seconds, bins);
  double const row_h = 50, row_gap = 16;
  int const time_digits = result.makespan_seconds < 10 ? 2 : 0;
  out << "<h2>Device utilisation over time</h2>\n<p>The share of each device's time that a task held its compute "
         "stream, in "
      << bins << " spans of " << fixed(result.makespan_seconds / bins, time_digits + 1)
      << " s: computing, or waiting there for that task's shard state or activation to arrive. On the right, the "
         "whole run's share held, and the share spent computing alone.</p>\n";
  out << "<svg id=\"utilisation\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << left + plot_w + 150
      << "\" height=\"" << top + static_cast<double>(context.devices) * (row_h + row_gap) + 30 << "\" role=\"img\">\n";
  for (std::size_t d = 0; d < context.devices; ++d) {
    double const base = top + static_cast<double>(d) * (row_h + row_gap) + row_h;
    double mean = 0;
    for (double f : held[d]) mean += f / bins;
    double const computing = d < result.device_busy_fraction.size() ? result.device_busy_fraction[d] : 0.0;
    out << "<g class=\"device\" data-device=\"" << d << "\">\n<text x=\"" << left - 6 << "\" y=\""
        << fixed(base - row_h / 2 + 4, 1) << "\" text-anchor=\"end\">device " << d << "</text>\n"
        << "<rect x=\"" << left << "\" y=\"" << base - row_h << "\" width=\"" << plot_w << "\" height=\"" << row_h
        << "\" fill=\"#f4f4f4\"/>\n<polygon fill=\"#4e79a7\" points=\"" << left << "," << base;
    for (std::size_t b = 0; b < bins; ++b) {
      double const x0 = left + plot_w * static_cast<double>(b) / bins;
      double const x1 = left + plot_w * static_cast<double>(b + 1) / bins;
      double const y = base - row_h * held[d][b];
      out << " " << fixed(x0, 1) << "," << fixed(y, 1) << " " << fixed(x1, 1) << "," << fixed(y, 1);
    }
    out << " " << left + plot_w << "," << base << "\"/>\n<text class=\"held\" x=\"" << left + plot_w + 6 << "\" y=\""
        << fixed(base - row_h / 2 - 4, 1) << "\">held " << fixed(100 * mean, 0)
        << "%</text>\n<text class=\"computing\" x=\"" << left + plot_w + 6 << "\" y=\""
        << fixed(base - row_h / 2 + 12, 1) << "\">computing " << fixed(100 * computing, 0) << "%</text>\n</g>\n";
  }
  double const axis_y = top + static_cast<double>(context.devices) * (row_h + row_gap) + 10;
  for (int k = 0; k <= 4; ++k)
    out << "<text x=\"" << fixed(left + plot_w * k / 4.0, 1) << "\" y=\"" << axis_y << "\" text-anchor=\"middle\">"
        << fixed(result.makespan_seconds * k / 4.0, time_digits) << " s</text>\n";
  out << "</svg>\n";

  // ---- the final table, in rank order
  out << "<h2>Configurations</h2>\n<table id=\"models\">\n<tr><th>rank</th><th class=\"name\">model</th>"
      << "<th>val acc</th><th>val loss</th><th>minibatches</th><th>test acc*</th><th class=\"how\">how far it got</th>"
      << "</tr>\n";
  std::size_t rank = 0;
  for (std::size_t m : context.order) {
    auto const& model = models[m];
    std::string how = model.failure         ? "failed: " + *model.failure
                      : model.stopped_early ? *model.stopped_early
                                            : "trained to the end";
    out << "<tr" << (result.chosen == m ? " class=\"chosen\"" : "") << "><td>" << ++rank << "</td><td class=\"name\">"
        << escape(model.config.name()) << "</td><td>"
        << (model.validation ? fixed(100 * model.validation->accuracy, 2) + "%" : "-") << "</td><td>"
        << (model.validation ? fixed(model.validation->loss, 4) : "-") << "</td><td>" << model.steps << "</td><td>"
        << (model.tested ? fixed(100 * model.test_accuracy, 2) + "%" : "-") << "</td><td class=\"how\">"
        << (result.chosen == m ? "CHOSEN; " : "") << escape(how) << "</td></tr>\n";
  }
  out << "</table>\n<p>* Test accuracy: only the chosen model's is its result; the others' are shown for reference "
         "and were never used to choose.</p>\n</body>\n</html>\n";
}

} // namespace model_selection
