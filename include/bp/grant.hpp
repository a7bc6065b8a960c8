// bp/grant.hpp: the one shape of every RAII grant of the library (bp::permit, bp::send_permit,
// bp::memory_permit, bp::limiter_permit). A grant is move-only, owns what a waiting verb took
// (permits, slots, bytes, a place in flight), gives it back when destroyed unless it was used,
// and carries the verb's answer so a failed grant still says why (`timeout`, `closed`, ...).
//
// Users hold the derived types; a grant type derives from grant<Traits>, where Traits names what is
// held and how it goes back:
//   struct Traits {
//     struct held { ... };                           // trivially copyable; {} holds nothing
//     static bool holds(const held&) noexcept;       // does it hold anything?
//     static void give_back(held&) noexcept;         // return it (called once, when it holds)
//   };
// Moving a grant moves the `held` and leaves the source empty, with the same answer.
#pragma once

#include <type_traits>
#include <utility>

#include "status.hpp"

namespace bp {

template <class Traits>
class grant {
 public:
  using held_type = typename Traits::held;
  static_assert(std::is_trivially_copyable_v<held_type>);

  grant(const grant&) = delete;
  grant& operator=(const grant&) = delete;

  // True when the grant holds something (the verb answered `ok` and nothing was given back).
  explicit operator bool() const noexcept { return Traits::holds(held_); }

  // The answer of the verb that made this grant: `ok` for a grant that holds (or held)
  // something, else why not.
  [[nodiscard]] status answer() const noexcept { return answer_; }

 protected:
  grant() noexcept = default;
  explicit grant(status answer) noexcept : answer_(answer) {}
  grant(held_type h, status answer) noexcept : held_(h), answer_(answer) {}
  grant(grant&& o) noexcept : held_(std::exchange(o.held_, held_type{})), answer_(o.answer_) {}
  grant& operator=(grant&& o) noexcept {
    if (this != &o) {
      give_back();
      held_ = std::exchange(o.held_, held_type{});
      answer_ = o.answer_;
    }
    return *this;
  }
  ~grant() { give_back(); }

  // Returns what is held now; the grant holds nothing afterwards.
  void give_back() noexcept {
    if (Traits::holds(held_)) {
      held_type h = std::exchange(held_, held_type{});
      Traits::give_back(h);
    }
  }
  // Forgets what is held without giving it back (the caller took it over); returns it.
  held_type release_held() noexcept { return std::exchange(held_, held_type{}); }

  held_type held_{};
  status answer_ = status::closed;
};

}  // namespace bp
