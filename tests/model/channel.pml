/* tests/model/channel.pml: a SPIN model of bp::channel's park/wake protocol (block policy).
 *
 * What is checked, exhaustively, for NP = 2 (or 1) producers and NC = 2 consumers on a ring
 * of CAP slots: every process terminates (no lost wake-up, no deadlock: a process parked on a
 * futex that nobody wakes is an invalid end state), every value sent is received exactly once
 * (no loss, no duplicate) and each producer's values are popped in the order it sent them.
 * Run it with scripts/model; tests/model/README.md says what is abstracted and why.
 *
 * Build-time switches (spin -D...):
 *   CAP=n         ring capacity (1 or 2 in scripts/model)
 *   K=n           values per producer (default 1; see the README for what K = 2 costs)
 *   NP=n          producers, 1 or 2 (default 2)
 *   RES=1         producers use reserve() instead: one permit.send, one dropped permit
 *   SPINS=n       attempts of the spin phase before each registration (default 1, see below)
 *   BUG_...       mutants (see "Mutants" at the end of this comment); each must FAIL
 *
 * Memory model: every seq_cst atomic (and, since nothing else is modelled, every other atomic
 * access too) is one indivisible Promela step, so executions are sequentially consistent. The
 * x86 TSO store buffer (a plain or release store becoming visible after a later load of the
 * same thread) is out of scope: it is what the seq_cst ticket CAS, the fences and the
 * settled_empty()/settled_full() re-checks are there for, and no SC model can show it. Weak
 * CAS failures are not modelled (they only repeat a loop iteration).
 *
 * Correspondence: each step below is one shared-memory access of the C++ code (one load, one
 * store or one RMW) with the thread-local work around it, except three places where several
 * loads are one step because the answer is linearizable (argued where they are defined):
 * the ring's claim in try_push / try_pop / try_claim_n, and closed_and_drained. Line
 * numbers are those of commit 7e6d4a1 (include/bp/channel.hpp, include/bp/detail/ring.hpp,
 * include/bp/detail/event_count.hpp, include/bp/detail/futex.hpp); the protocol is that of
 * f81a780, the last commit to change it (the later bfa1ba7 and 91734cc only added functions
 * the model does not use, which moved the lines of channel.hpp).
 *
 *   model                          C++ (file:function, line)
 *   ---------------------------    -------------------------------------------------------------
 *   ec_prepare_wait                event_count.hpp:prepare_wait 57 epoch_.load, 58 state_.fetch_add
 *                                    (+59 full_fence: a no-op under SC)
 *   ec_leave (cancel_wait, and     event_count.hpp:leave 118-124: one CAS loop = one RMW: waiters-1,
 *     the tail of ec_wait)           signalled-1 if a signal is pending
 *   ec_wait                        event_count.hpp:wait 66-69: 67 futex_wait(epoch_, key), then
 *                                    68 leave()
 *   futex_wait (inside ec_wait)    futex.hpp:futex_wait 72-88: atomically "park if epoch == key",
 *                                    then blocked until a futex_wake clears our bit
 *   futex_wake                     futex.hpp:futex_wake 90-93: unparks up to n parked threads, any
 *   ec_wake_if_waiting             event_count.hpp:wake_if_waiting 87-98: 88 load + 94 CAS
 *                                    (one step: see the inline), 96 epoch_.fetch_add, 97 futex_wake
 *   ec_notify_all                  event_count.hpp:notify_all 77-80 (fence: no-op under SC)
 *   ring_try_push                  ring.hpp:try_push 71-96: one step for 72-79 and 86-93 (claim
 *                                    by the tail CAS, or full / closed), one for 81-82 (value +
 *                                    release store of seq)
 *   ring_try_pop                   ring.hpp:try_pop 100-129: one step for 101-107 and 121-126
 *                                    (claim by the head CAS, or empty), then 110 (tombstone:
 *                                    release_tombstone 354-357, loop) or 115-118 (value taken,
 *                                    seq store)
 *   ring_try_claim                 ring.hpp:try_claim_n 210-232 with n = 1: one step for 211-223
 *                                    (claim or full / closed), one for 226 (reserved mark)
 *   ring_pass_tombstones           ring.hpp:pass_tombstones 248-261: 250 head load, 253 seq load,
 *                                    254 CAS, 256 release_tombstone
 *   ring_settled_empty             ring.hpp:settled_empty 282-287: 283 tail, 284 head, 286 seq
 *   ring_settled_full              ring.hpp:settled_full 299-303: 300 head, 301 tail
 *   ring_closed_and_drained        ring.hpp:closed_and_drained 307-310 (one step, see there)
 *   ring_close                     ring.hpp:close 269-271: tail_.fetch_or(closed_bit)
 *   ch_after_push                  channel.hpp:after_push 412-423 (422 wake_if_waiting(1); the
 *                                    high-watermark bookkeeping is relaxed statistics: omitted)
 *   ch_after_pop                   channel.hpp:after_pop 426-428
 *   ch_pop_one                     channel.hpp:pop_one 431-436
 *   ch_push_once                   channel.hpp:push_once 454-466
 *   ch_pass_tombstones             channel.hpp:pass_tombstones 728-733 (729 reserved_ load)
 *   ch_send (send_impl)            channel.hpp:send_impl 468-491 (470, 471-472, then 490)
 *   ch_send (send_waiting)         channel.hpp:send_waiting 522-543: 526 spin, 527 prepare_wait,
 *                                    528-531 re-check, 536-539 settled_full || pass_tombstones,
 *                                    541 wait
 *   ch_recv (recv_impl)            channel.hpp:recv_impl 560-590: 566 first pop, 567
 *                                    closed_and_drained, 571 spin, 572 closed_and_drained,
 *                                    573 prepare_wait, 574-577 re-check, 578-581
 *                                    closed_and_drained, 582-587 settled_empty, 588 wait
 *   ch_claim                       channel.hpp:reserve_impl's claim lambda 667-680: 668
 *                                    reserved_.fetch_add, 669 try_claim_n, 673/678 fetch_sub
 *   ch_attempt_claim               reserve_impl's attempt lambda 683-687: 684 claim, 685
 *                                    pass_tombstones and, if it passed any, claim again
 *   ch_reserve                     channel.hpp:reserve_impl 659-709 (688 first attempt, 692 spin,
 *                                    693 prepare_wait, 694-695 re-check, 699-701 settled_full ||
 *                                    pass_tombstones, 703 wait)
 *   ch_permit_send                 channel.hpp:permit_publish 713-718 (714 ring::publish 235-239,
 *                                    717 notify_all), called by send_permit::send 800-804
 *   ch_permit_drop                 channel.hpp:permit_skip 720-724 (721 ring::skip 242-244,
 *                                    722 pass_tombstones, 723 notify_all), from release() 811-815
 *   ch_close                       channel.hpp:close 316-325 (321 ring close, 322-323 notify_all)
 *   producer: last one closes      channel.hpp:channel_end::reset 857-860 (senders.fetch_sub == 1)
 *
 * The spin phase (detail/spin.hpp:spin_for_budget) retries the same attempt for a bounded time
 * before the thread registers; it is modelled as 0..SPINS extra attempts, chosen by SPIN. An
 * unregistered attempt is not the same as the registered re-check (a notifier does not count
 * the spinning thread), so it is kept, bounded: an unbounded choice would add fake infinite
 * loops and nothing else (the real spin is bounded by time).
 *
 * Timeouts (deadlines) are not modelled: every wait is infinite, the strongest setting for a
 * lost wake-up. Spurious futex returns are not modelled either (they only help progress).
 *
 * Mutants (scripts/model requires that SPIN finds an error in each):
 *   BUG_NO_RECHECK         after prepare_wait, park at once: no re-check of the ring (neither
 *                          the pop/push attempt nor closed_and_drained / settled_*)
 *   BUG_KEY_AFTER_REGISTER prepare_wait reads the epoch after registering (the order that
 *                          event_count.hpp:prepare_wait's comment explains is wrong)
 *   BUG_LEAVE_KEEPS_SIGNAL leave() does not consume a pending signal
 *   BUG_CLOSE_NOTIFY_ONE   close() wakes one waiter per event count instead of all
 *   BUG_PERMIT_NO_NOTIFY   permit_publish does not notify receivers (RES=1 only)
 */

#ifndef CAP
#define CAP 1
#endif
#ifndef K
#define K 1
#endif
#ifndef RES
#define RES 0
#endif
#ifndef SPINS
#define SPINS 1
#endif

#ifndef NP
#define NP 2            /* producers: thread ids 0 .. NP-1 (1 or 2) */
#endif
#define NC 2            /* consumers: thread ids NP .. NP+NC-1 */
#define NE 0            /* channel::not_empty_ (receivers wait here) */
#define NF 1            /* channel::not_full_ (block-policy senders wait here) */
#define ALL 255         /* INT_MAX: notify_all's count */

#define CLOSED_BIT 128  /* ring::closed_bit, the top bit of tail_ */
#define RESERVED 64     /* ring::reserved_mark */
#define SKIP 32         /* ring::skip_mark */
#define UNMARK(s) ((s) & 31)  /* seq & ~marks (sequence numbers stay below 32 here) */
#define IDX(p) ((p) % CAP)    /* ring::index */

/* push_result / status */
#define NONE 0
#define OK 1
#define CLOSED 2
#define FULL 3

/* ---- shared state ----------------------------------------------------------------------- */
byte tailw;           /* ring::tail_: next ticket | CLOSED_BIT */
byte head;            /* ring::head_ */
byte seq[CAP];        /* ring::slot::seq (initially 2*i) */
byte val[CAP];        /* ring::slot::storage */
byte reserved;        /* channel::reserved_: tickets claimed by reservations, counted just
                         before each claim and taken back when it fails (only "zero or not"
                         decides anything: pass_tombstones) */
byte senders = NP;    /* channel_core::senders */

byte waiters[2];      /* event_count::state_ >> 32, one per event count */
byte signalled[2];    /* event_count::state_ & signal_mask */
/* event_count::epoch_, the futex word, is only ever compared with a key a thread read from it
   before (futex_wait parks iff epoch_ == key), and it only grows: so what matters is whether it
   moved since that thread's read. haskey[ec] bit i: thread i holds a key (from its read in
   prepare_wait to its leave()); keymoved[ec] bit i: the epoch was bumped since that read. Same
   behaviours as counting the epoch (short of 2^32 bumps between a read and the wait), far
   fewer states. */
byte haskey[2];
byte keymoved[2];
byte parked[2];       /* threads asleep in futex_wait on epoch_[ec]: bit i = thread i */

/* Ghost state for the assertions: bit v set when a pop claimed value v (at its head CAS). */
short popped;

/* ---- event count (event_count.hpp) ------------------------------------------------------ */

inline ec_prepare_wait(ec) {
#ifndef BUG_KEY_AFTER_REGISTER
  d_step {                                  /* :57 key = epoch_.load (before registering) */
    haskey[ec] = haskey[ec] | (1 << me); keymoved[ec] = keymoved[ec] & ~(1 << me)
  };
  waiters[ec] = waiters[ec] + 1;            /* :58 state_.fetch_add(one_waiter) + :59 fence */
#else
  waiters[ec] = waiters[ec] + 1;            /* mutant: register first ... */
  d_step {                                  /* ... then read the key */
    haskey[ec] = haskey[ec] | (1 << me); keymoved[ec] = keymoved[ec] & ~(1 << me)
  }
#endif
}

inline ec_leave_body(ec) {                  /* :118-124, one successful CAS */
  haskey[ec] = haskey[ec] & ~(1 << me); keymoved[ec] = keymoved[ec] & ~(1 << me);  /* key dead */
  waiters[ec] = waiters[ec] - 1;
#ifndef BUG_LEAVE_KEEPS_SIGNAL
  if
  :: signalled[ec] > 0 -> signalled[ec] = signalled[ec] - 1
  :: else -> skip
  fi
#endif
}

inline ec_leave(ec) {                       /* cancel_wait :63 = leave() */
  d_step { ec_leave_body(ec) }
}

inline ec_wait(ec) {                   /* :66-69 */
  atomic {                                  /* futex_wait: checks the word and queues atomically */
    if
    :: !(keymoved[ec] & (1 << me)) -> parked[ec] = parked[ec] | (1 << me)   /* epoch_ == key */
    :: else -> skip
    fi
  }
  /* Blocked here until a futex_wake clears our bit (no timeout, no spurious wake-up); then
     :68 leave(). A thread left here forever is SPIN's "invalid end state". */
  atomic {
    (parked[ec] & (1 << me)) == 0 ->
    ec_leave_body(ec)
  }
}

inline futex_wake(ec, n) {                  /* wakes up to n threads parked on epoch_[ec] */
  atomic {
    k = n;
    do
    :: k > 0 && parked[ec] != 0 ->
       if
       :: (parked[ec] & 1) -> parked[ec] = parked[ec] & 14
       :: (parked[ec] & 2) -> parked[ec] = parked[ec] & 13
       :: (parked[ec] & 4) -> parked[ec] = parked[ec] & 11
       :: (parked[ec] & 8) -> parked[ec] = parked[ec] & 7
       fi;
       k = k - 1
    :: else -> break
    od;
    k = 0
  }
}

/* wake_if_waiting(count) :87-98. The load (:88) and the CAS loop (:90-95) are one step: a CAS
   that succeeds saw the value its decision was computed from, a failed one only reloads, and
   the early return (no waiter beyond the signalled ones) is decided on a load that can be
   taken as that same instant. The epoch bump and the futex_wake are separate steps. */
inline ec_wake_if_waiting(ec, count) {
  d_step {
    if
    :: waiters[ec] > signalled[ec] ->
       add = waiters[ec] - signalled[ec];
       if
       :: add > count -> add = count
       :: else -> skip
       fi;
       signalled[ec] = signalled[ec] + add
    :: else -> add = 0
    fi
  }
  if
  :: add > 0 ->
     keymoved[ec] = haskey[ec];             /* :96 epoch_.fetch_add: every key is stale */
     futex_wake(ec, add);                   /* :97 */
     add = 0
  :: else -> skip
  fi
}

inline ec_notify_all(ec) {                  /* :77-80 (the fence is a no-op under SC) */
  ec_wake_if_waiting(ec, ALL)
}

/* ---- ring (ring.hpp) -------------------------------------------------------------------- */

/* The ring's three hot operations are modelled at their linearization points, one step each
   for the claim and one for the publication (or release) of the slot:
   - try_push: its loop (tail load :72, seq load :76, tail CAS :79, re-reads :89/:93) claims
     ticket t exactly at an instant where tail == t and slot t is free (the CAS; the slot stays
     free between the seq load and the CAS because only the claimer of t writes it), answers
     `full` only if at the seq load tail == t (tail is re-read unchanged at :89-90 and only
     grows) and the slot still holds the previous lap, and `closed` on the closed bit; the
     loops over a stale `pos` write nothing. So "look at tail and its slot, decide" is one
     step; the value and the release store of seq (:81-82) are the next.
   - try_pop and try_claim_n(1) likewise (:101-126, :211-223).
   The window between a claim and its publication, which settled_empty()/settled_full() exist
   for, is kept. pass_tombstones and the settled/closed checks are modelled load by load. */

/* try_push :71-96 -> res = OK | FULL | CLOSED (and the ticket in `ticket`) */
inline ring_try_push(v) {
  atomic {                                                /* :72-93 claim, or full / closed */
    if
    :: (tailw & CLOSED_BIT) -> res = CLOSED               /* :74 */
    :: else ->
       if
       :: UNMARK(seq[IDX(tailw)]) == 2 * tailw ->         /* :78-79 free: CAS */
          ticket = tailw; tailw = tailw + 1; res = OK
       :: else -> res = FULL                              /* :86-90 previous lap still there */
       fi
    fi
  }
  if
  :: res == OK ->
     d_step {                                             /* :81-82 value, release store */
       val[IDX(ticket)] = v;
       seq[IDX(ticket)] = 2 * ticket + 1
     }
  :: else -> skip
  fi
}

/* try_pop :100-129 -> got = 1 and the value in v, or got = 0; tombstones passed add to
   `passed`. The FIFO / no-duplicate assertions sit on the claim (the head CAS), where the
   value is decided (pops may finish in another order than they claim). */
inline ring_try_pop() {
  do
  :: atomic {                                             /* :101-107 claim, or :121-123 empty */
       s = seq[IDX(head)];
       if
       :: UNMARK(s) == 2 * head + 1 ->                    /* :106 published: CAS :107 */
          pos = head; head = head + 1;
          if
          :: (s & SKIP) -> cas = 1                        /* :109 a tombstone */
          :: else ->
             cas = 2;
             v = val[IDX(pos)];
             assert(!(popped & (1 << v)));                /* no duplicate */
             /* FIFO per producer: all earlier values of v's producer were popped already */
             assert((popped & ((1 << v) - (1 << (v / K * K)))) ==
                    ((1 << v) - (1 << (v / K * K))));
             popped = popped | (1 << v)
          fi
       :: else -> cas = 0                                 /* :123 empty (or mid-push) */
       fi;
       s = 0
     }
     if
     :: cas == 1 ->
        d_step {                                          /* :110 release_tombstone :354-357 */
          seq[IDX(pos)] = 2 * (pos + CAP);
          passed = passed + 1; pos = 0; cas = 0
        }                                                 /* :111-113 continue */
     :: cas == 2 ->
        d_step {                                          /* :115-118 take value, free slot */
          assert(seq[IDX(pos)] == 2 * pos + 1 && val[IDX(pos)] == v);
          seq[IDX(pos)] = 2 * (pos + CAP);
          got = 1; cas = 0; pos = 0
        };
        break
     :: else -> got = 0; break
     fi
  od
}

/* try_claim_n(1) :210-232 -> res = OK | FULL | CLOSED, ticket */
inline ring_try_claim() {
  atomic {                                                /* :211-223 claim, or full / closed */
    if
    :: (tailw & CLOSED_BIT) -> res = CLOSED               /* :213 */
    :: else ->
       if
       :: seq[IDX(tailw)] == 2 * tailw ->                 /* :215 free: CAS :223 */
          ticket = tailw; tailw = tailw + 1; res = OK
       :: else -> res = FULL                              /* :217-219 */
       fi
    fi
  }
  if
  :: res == OK -> seq[IDX(ticket)] = (2 * ticket) | RESERVED   /* :226 mark reserved */
  :: else -> skip
  fi
}

/* pass_tombstones :248-261 -> passed */
inline ring_pass_tombstones() {
  passed = 0;
  pos = head;                                             /* :250 */
  do
  :: s = seq[IDX(pos)];                                   /* :253 */
     if
     :: s != ((2 * pos + 1) | SKIP) -> s = 0; pos = 0; break
     :: else ->
        atomic {                                          /* :254 head_ CAS */
          if
          :: head == pos -> head = pos + 1; cas = 1
          :: else -> pos = head; cas = 0
          fi
        }
        if
        :: cas ->
           d_step {                                       /* :256 release_tombstone */
             seq[IDX(pos)] = 2 * (pos + CAP);
             passed = passed + 1; pos = pos + 1; cas = 0
           }
        :: else -> skip
        fi
     fi
  od
}

inline ring_settled_empty() {                 /* :282-287 -> flag */
  t = tailw & ~CLOSED_BIT;                    /* :283 */
  d_step { h = head; flag = (h == t); t = 0 };   /* :284-285 */
  if
  :: !flag -> d_step { flag = (seq[IDX(h)] == ((2 * h) | RESERVED)); h = 0 }   /* :286 */
  :: else -> h = 0
  fi
}

inline ring_settled_full() {                  /* :299-303 with n = 1 -> flag */
  h = head;                                   /* :300 */
  d_step { flag = ((tailw & ~CLOSED_BIT) - h > CAP - 1); h = 0 }   /* :301-302 */
}

/* closed_and_drained :307-310 -> flag. Two loads (tail :308, then head :309), one step here:
   the answer is linearizable. Both indices only grow, the head never passes the tail and a
   closed tail never moves, so "true" read at the head load was true at the tail load too, and
   "false" is the answer a snapshot at the tail load gives. */
inline ring_closed_and_drained() {
  d_step {
    flag = (tailw & CLOSED_BIT) && head == (tailw & ~CLOSED_BIT)
  }
}

/* ---- channel (channel.hpp) -------------------------------------------------------------- */

inline ch_after_push() { ec_wake_if_waiting(NE, 1) }        /* :412-423 */
inline ch_after_pop(n) { ec_wake_if_waiting(NF, n) }        /* :426-428 */

inline ch_push_once(v) {                      /* :454-466 -> res OK | CLOSED | FULL */
  ring_try_push(v);
  if
  :: res == OK -> ticket = 0; ch_after_push()                 /* :458 */
  :: else -> skip
  fi
}

inline ch_pop_one() {                         /* :431-436 -> got, v */
  passed = 0;
  ring_try_pop();
  if
  :: got || passed -> ch_after_pop(passed + got)               /* :434 */
  :: else -> skip
  fi;
  passed = 0
}

inline ch_pass_tombstones() {                 /* :728-733 -> flag (passed any) */
  if
  :: reserved == 0 -> flag = 0                /* :729 reserved_ load (relaxed) */
  :: else ->
     ring_pass_tombstones();                  /* :730 */
     if
     :: passed > 0 -> ch_after_pop(passed)    /* :731 */
     :: else -> skip
     fi;
     flag = (passed > 0); passed = 0
  fi
}

/* send_impl :468-491 (block policy, may_wait) and send_waiting :522-543 -> res */
inline ch_send(v) {
  ch_push_once(v);                            /* :470 */
  if
  :: res == FULL ->
     ch_pass_tombstones();                    /* :471 */
     if
     :: flag -> flag = 0; ch_push_once(v)     /* :472 */
     :: else -> skip
     fi
  :: else -> skip
  fi;
  if
  :: res == FULL ->                           /* :490 send_waiting */
     do
     :: sp = 0;                               /* :526 spin phase: 0..SPINS attempts */
        do
        :: sp < SPINS -> sp = sp + 1; ch_push_once(v);
           if
           :: res != FULL -> break
           :: else -> skip
           fi
        :: break
        od;
        sp = 0;
        if
        :: res != FULL -> break
        :: else -> skip
        fi;
        ec_prepare_wait(NF);             /* :527 */
#ifndef BUG_NO_RECHECK
        ch_push_once(v);                      /* :528 re-check */
        if
        :: res != FULL -> ec_leave(NF); break        /* :529-530 cancel_wait */
        :: else -> skip
        fi;
        ring_settled_full();                  /* :536 */
        if
        :: !flag -> flag = 1                  /* room is being freed */
        :: else -> ch_pass_tombstones()
        fi;
#else
        flag = 0;
#endif
        if
        :: flag -> flag = 0; ec_leave(NF)            /* :537-539 cancel, retry */
        :: else -> ec_wait(NF)           /* :541 */
        fi
     od
  :: else -> skip
  fi
}

/* recv_impl :560-590 (may_wait, no deadline) -> got, v */
inline ch_recv() {
  ch_pop_one();                               /* :566 */
  if
  :: !got -> ring_closed_and_drained()        /* :567 the end is answered without a spin */
  :: else -> skip
  fi;
  if
  :: !got && !flag ->
     do
     :: sp = 0;                               /* :571 spin phase: 0..SPINS attempts */
        do
        :: sp < SPINS -> sp = sp + 1; ch_pop_one();
           if
           :: got -> break
           :: else -> skip
           fi
        :: break
        od;
        sp = 0;
        if
        :: got -> break
        :: else -> skip
        fi;
        ring_closed_and_drained();            /* :572 */
        if
        :: flag -> break
        :: else -> skip
        fi;
        ec_prepare_wait(NE);                  /* :573 */
#ifndef BUG_NO_RECHECK
        ch_pop_one();                         /* :574 re-check */
        if
        :: got -> ec_leave(NE); break         /* :575-576 */
        :: else -> skip
        fi;
        ring_closed_and_drained();            /* :578 */
        if
        :: flag -> ec_leave(NE); break        /* :579-580 */
        :: else -> skip
        fi;
        ring_settled_empty();                 /* :582 */
        flag = !flag;                         /* now: "not settled" */
#else
        flag = 0;
#endif
        if
        :: flag -> flag = 0; ec_leave(NE)     /* :583-586 cancel, retry */
        :: else -> ec_wait(NE)                /* :588 */
        fi
     od
  :: else -> skip                             /* a value, or :567 std::nullopt */
  fi;
  flag = 0
}

/* reserve_impl(1) :659-709 (may_wait, no deadline) -> res, ticket */
inline ch_claim() {                           /* :667-680 the claim lambda */
  reserved = reserved + 1;                    /* :668 counted before the claim */
  ring_try_claim();                           /* :669 */
  if
  :: res != OK -> reserved = reserved - 1     /* :673, :678 closed or full: undone */
  :: else -> skip
  fi
}

inline ch_attempt_claim() {                   /* :683-687 the attempt lambda */
  ch_claim();                                 /* :684 */
  if
  :: res == FULL ->
     ch_pass_tombstones();                    /* :685 a slot given back at the head is free */
     if
     :: flag -> flag = 0; ch_claim()          /* :685 once passed: claim again */
     :: else -> skip
     fi
  :: else -> skip
  fi
}

inline ch_reserve() {
  ch_attempt_claim();                         /* :688 */
  if
  :: res == FULL ->
     do
     :: sp = 0;                               /* :692 spin phase: 0..SPINS attempts */
        do
        :: sp < SPINS -> sp = sp + 1; ch_attempt_claim();
           if
           :: res != FULL -> break
           :: else -> skip
           fi
        :: break
        od;
        sp = 0;
        if
        :: res != FULL -> break
        :: else -> skip
        fi;
        ec_prepare_wait(NF);                  /* :693 */
#ifndef BUG_NO_RECHECK
        ch_attempt_claim();                   /* :694 re-check */
        if
        :: res != FULL -> ec_leave(NF); break /* :695 */
        :: else -> skip
        fi;
        ring_settled_full();                  /* :699 */
        if
        :: !flag -> flag = 1                  /* room is being freed */
        :: else -> ch_pass_tombstones()
        fi;
#else
        flag = 0;
#endif
        if
        :: flag -> flag = 0; ec_leave(NF)     /* :700-701 cancel, retry */
        :: else -> ec_wait(NF)                /* :703 */
        fi
     od
  :: else -> skip
  fi
}

inline ch_permit_send(v) {                    /* permit_publish :713-718 */
  d_step {                                    /* ring::publish :235-239 */
    val[IDX(ticket)] = v;
    seq[IDX(ticket)] = 2 * ticket + 1;
    ticket = 0
  };
#ifndef BUG_PERMIT_NO_NOTIFY
  ec_notify_all(NE)                           /* :717 */
#else
  skip
#endif
}

inline ch_permit_drop() {                     /* permit_skip :720-724 */
  d_step {                                    /* ring::skip :242-244 */
    seq[IDX(ticket)] = (2 * ticket + 1) | SKIP;
    ticket = 0
  };
  ch_pass_tombstones();                       /* :722 */
  flag = 0;
  ec_notify_all(NE)                           /* :723 */
}

inline ch_close() {                           /* :316-325 */
  atomic {                                    /* :321 ring::close: tail_.fetch_or */
    flag = !(tailw & CLOSED_BIT);
    tailw = tailw | CLOSED_BIT
  };
  if
  :: flag ->
     flag = 0;
#ifndef BUG_CLOSE_NOTIFY_ONE
     ec_notify_all(NE);                       /* :322 */
     ec_notify_all(NF)                        /* :323 */
#else
     ec_wake_if_waiting(NE, 1);
     ec_wake_if_waiting(NF, 1)
#endif
  :: else -> skip
  fi
}

/* ---- threads ---------------------------------------------------------------------------- */

/* What producer `me` does at step i: send a value, reserve and send through the permit, or
   reserve and drop the permit (a tombstone). Each producer sends K values. */
#define OP_SEND 1
#define OP_PERMIT_SEND 2
#define OP_PERMIT_DROP 3
#if RES
/* Producer 0: reserve, then permit.send(v0). Producer 1: reserve, then drop the permit (a
   tombstone), sending no value. Whichever reserves first, the reserved slot or the tombstone
   sits at the head with the other behind it, while consumers wait and the last producer
   closes. (Richer mixes did not fit the time budget: tests/model/README.md.) */
#define NOPS 1
#define OP(p, i) ((p) == 0 -> OP_PERMIT_SEND : OP_PERMIT_DROP)
#define NVALUES(p) ((p) == 0 -> K : 0)
#define ALLVALUES ((1 << K) - 1)
#define NRESERVED NP    /* successful reservations: reserved_ at the end */
#else
#define NOPS K
#define OP(p, i) OP_SEND
#define NVALUES(p) K
#define ALLVALUES ((1 << (NP * K)) - 1)
#define NRESERVED 0
#endif

proctype producer(byte me) {
  byte i, nv, v, res, ticket, pos, s, add, k, passed, sp, t, h;
  byte cas;
  bool flag;
  do
  :: i < NOPS && OP(me, i) == OP_SEND ->
     v = me * K + nv;
     ch_send(v);
     assert(res == OK);                       /* nobody closes before the last send */
     res = NONE; v = 0; nv++; i++
  :: i < NOPS && OP(me, i) == OP_PERMIT_SEND ->
     ch_reserve();
     assert(res == OK);
     res = NONE;
     v = me * K + nv;
     ch_permit_send(v);
     v = 0; nv++; i++
  :: i < NOPS && OP(me, i) == OP_PERMIT_DROP ->
     ch_reserve();
     assert(res == OK);
     res = NONE;
     ch_permit_drop();
     i++
  :: else -> break
  od;
  assert(nv == NVALUES(me));
  /* channel_end::reset: the last sender to go closes the channel */
  atomic { senders = senders - 1; flag = (senders == 0) };
  if
  :: flag -> ch_close()
  :: else -> skip
  fi
}

proctype consumer(byte me) {
  byte v, pos, s, add, k, passed, sp, t, h;
  byte cas;
  bool got, flag;
  do
  :: ch_recv();
     if
     :: got -> assert(popped & (1 << v)); got = 0; v = 0
     :: else -> break                          /* std::nullopt: closed and drained */
     fi
  od
}

init {
  byte i;
  d_step {
    i = 0;
    do
    :: i < CAP -> seq[i] = 2 * i; i++
    :: else -> break
    od;
    i = 0
  };
  atomic {
    run producer(0);
#if NP > 1
    run producer(1);
#endif
    run consumer(NP); run consumer(NP + 1)
  };
  (_nr_pr == 1);                              /* all four ended (else: invalid end state) */
  assert(popped == ALLVALUES);                /* every value received exactly once */
  assert(tailw & CLOSED_BIT);
  assert(head == (tailw & ~CLOSED_BIT));      /* drained, tombstones included */
  assert(waiters[NE] == 0 && waiters[NF] == 0 && parked[NE] == 0 && parked[NF] == 0);
  assert(signalled[NE] == 0 && signalled[NF] == 0);
  assert(reserved == NRESERVED)               /* every failed claim took its count back */
}
