// Checks on the main job's HTML report shared by its tests: a small report
// from a real (tiny) search, and a structural check of the page as XML.
#pragma once

#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "report.hpp"
#include "sweep.hpp"

namespace report_check {

// A successive-halving search on a small subset, as its HTML report; the
// outcome too, for the checks to compare against.
struct small_report {
  model_selection::outcome result;
  std::string html;
  std::size_t devices = 0;
};

inline small_report make(model_selection::options o) {
  std::ostringstream log;
  o.report_path = "unused"; // records the schedule, as --report does
  small_report out;
  out.devices = o.devices;
  out.result = model_selection::run(o, log);
  std::ostringstream page;
  model_selection::write_html_report(page, out.result,
                                     {.title = "a test's search",
                                      .devices = o.devices,
                                      .total_steps = out.result.total_steps,
                                      .order = model_selection::ranked(out.result.models)});
  out.html = page.str();
  return out;
}

// "" if `page` is well-formed XML after its doctype: every element closed in
// order, every attribute quoted, `&` only in the entities the report writes;
// otherwise what is wrong and where.
inline std::string structure_error(std::string const& page) {
  std::vector<std::string> open;
  std::size_t at = 0;
  auto name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == ':'; };
  auto text_ok = [&](std::size_t from, std::size_t to) -> std::string {
    for (std::size_t k = from; k < to; ++k) {
      if (page[k] != '&') continue;
      bool known = false;
      for (char const* entity : {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"})
        known = known || page.compare(k, std::char_traits<char>::length(entity), entity) == 0;
      if (!known) return "a bare & at " + std::to_string(k);
    }
    return "";
  };
  if (page.rfind("<!DOCTYPE html>", 0) != 0) return "no <!DOCTYPE html> at the start";
  at = page.find('>') + 1;
  while (true) {
    std::size_t const lt = page.find('<', at);
    if (auto e = text_ok(at, lt == std::string::npos ? page.size() : lt); !e.empty()) return e;
    if (lt == std::string::npos) break;
    std::size_t const gt = page.find('>', lt);
    if (gt == std::string::npos) return "a tag at " + std::to_string(lt) + " never closes";
    std::string const tag = page.substr(lt + 1, gt - lt - 1);
    at = gt + 1;
    if (tag.empty()) return "an empty tag at " + std::to_string(lt);
    if (tag[0] == '/') {
      std::string const name = tag.substr(1);
      if (open.empty() || open.back() != name)
        return "</" + name + "> at " + std::to_string(lt) + " closes " +
               (open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
      continue;
    }
    std::size_t k = 0;
    while (k < tag.size() && name_char(tag[k])) ++k;
    if (k == 0) return "a tag without a name at " + std::to_string(lt);
    std::string const name = tag.substr(0, k);
    bool const self_closing = tag.back() == '/';
    std::size_t const end = self_closing ? tag.size() - 1 : tag.size();
    while (k < end) { // attributes: name="value", separated by spaces
      if (tag[k] == ' ' || tag[k] == '\n') {
        ++k;
        continue;
      }
      std::size_t const attribute = k;
      while (k < end && name_char(tag[k])) ++k;
      if (k == attribute || k + 1 >= end || tag[k] != '=' || tag[k + 1] != '"')
        return "an unquoted or malformed attribute in <" + name + "> at " + std::to_string(lt);
      std::size_t const close = tag.find('"', k + 2);
      if (close == std::string::npos || close >= end) return "an unclosed attribute value in <" + name + ">";
      if (auto e = text_ok(lt + 1 + k + 2, lt + 1 + close); !e.empty()) return e;
      k = close + 1;
    }
    if (!self_closing) open.push_back(name);
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  return "";
}

// How many times `needle` occurs in `text`.
inline std::size_t count(std::string const& text, std::string const& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

} // namespace report_check
