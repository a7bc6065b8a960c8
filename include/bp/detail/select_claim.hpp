// Internal: the one decision of a select that waits on capacity-0 channels.
//
// A select waits on a buffered channel by watching it (detail/select.hpp) and completes the case
// itself. A capacity-0 channel has nothing to watch: a value moves only when a sender and a
// receiver meet. So a select queues a node in each of its capacity-0 channels (as a waiting
// sender or receiver does, detail/rendezvous.hpp), and whoever comes along on the other side
// completes that case itself, handing the value over. The select's decision is therefore shared
// by several parties, and this word makes it once:
//
//   open      nothing decided; any party may complete a case by moving it to index + 1
//   busy      the select itself is trying one of its cases right now (it holds at most the
//             mutex of that one case's channel, and takes no lock while busy)
//   index + 1 that case completed; nobody completes another
//   given_up  the select ended without a case (timeout, stop); nobody completes one
//
// A party that finds the select busy while it holds a channel's mutex waits until it is not
// (briefly: a busy select is doing one bounded attempt), except a select meeting another busy
// select: the one at the higher address gives way instead, so waits only ever go from a lower
// address to a higher one (a plain sender or receiver counts as the lowest) and can never form a
// cycle. The select that gives way leaves its node queued and wakes the other, which finds it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <thread>

#include "spin.hpp"

namespace bp::detail {

struct select_claim {
  static constexpr std::uint32_t open = 0;
  static constexpr std::uint32_t busy = std::numeric_limits<std::uint32_t>::max();
  // Not busy: a party that meets it must not wait (it never changes again), it moves on.
  static constexpr std::uint32_t given_up = busy - 1;

  enum class result { claimed, taken, busy };

  // Another party completes case `index`: claimed, or taken (something else completed first, or
  // the select gave up), or busy (the select is trying a case of its own: wait, or give way, see
  // above).
  result claim(std::uint32_t index) noexcept {
    std::uint32_t e = open;
    if (decided.compare_exchange_strong(e, index + 1, std::memory_order_acq_rel)) {
      return result::claimed;
    }
    return e == busy ? result::busy : result::taken;
  }

  // The select, before one of its own attempts: true if it may go on (now busy); false when a
  // case was completed by another party first (`completed` says which).
  bool begin(std::uint32_t& completed) noexcept {
    std::uint32_t e = open;
    if (decided.compare_exchange_strong(e, busy, std::memory_order_acq_rel)) return true;
    completed = e - 1;
    return false;
  }
  // After the attempt: the case it completed, or open again.
  void end(std::optional<std::uint32_t> completed) noexcept {
    decided.store(completed ? *completed + 1 : open, std::memory_order_release);
  }
  // The select gives up (timeout, cancelled): no case may complete from now on. Returns the
  // case another party completed just before, if one did.
  std::optional<std::uint32_t> close_out() noexcept {
    std::uint32_t e = open;
    if (decided.compare_exchange_strong(e, given_up, std::memory_order_acq_rel))
      return std::nullopt;
    return e - 1;
  }

  void wait_not_busy() const noexcept {
    for (int spins = 0; decided.load(std::memory_order_acquire) == busy; ++spins) {
      if (spins < 64) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }

  // Whether `mine` (a select meeting this one busy, or nullptr for a plain party) waits for it.
  [[nodiscard]] bool waited_for_by(const select_claim* mine) const noexcept {
    return mine == nullptr || std::less<const select_claim*>{}(mine, this);
  }

  std::atomic<std::uint32_t> decided{open};
};

}  // namespace bp::detail
