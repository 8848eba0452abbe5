// "Did you mean" for misspelt names: the Levenshtein distance and the closest candidate.
// Header-only, so that the curlcache command (built on the public API alone) and the config
// loader share one definition.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>
#include <vector>

namespace curlcache::base {

inline std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// The candidate closest to `word`, or "" when none is near enough to be what was meant:
// at most two edits (one for words of up to four letters), or `word` being the start of
// exactly that candidate ("--exp" for "--expired").
template <typename Range> std::string_view closest(std::string_view word, const Range& candidates) {
    std::string_view best;
    std::size_t best_distance = word.size() <= 4 ? 2 : 3;
    std::size_t prefixed = 0;
    std::string_view prefix_match;
    for (std::string_view candidate : candidates) {
        const std::size_t distance = edit_distance(word, candidate);
        if (distance < best_distance) {
            best_distance = distance;
            best = candidate;
        }
        if (word.size() >= 2 && candidate.starts_with(word)) {
            ++prefixed;
            prefix_match = candidate;
        }
    }
    if (best.empty() && prefixed == 1) {
        return prefix_match;
    }
    return best_distance == 0 ? std::string_view() : best;
}

} // namespace curlcache::base
