// bp/nats/options.hpp: connection, stream and consumer settings of a JetStream channel.
//
//   bp::nats::options       one struct for both ends, written with designated initializers.
//   bp::nats::tls_options   TLS files and checks, passed through to nats.c.
//   bp::nats::auth_options  user/password, token, credentials (.creds) or NKey seed file.
//   bp::nats::stream_setup  create (or update) the stream and durable consumer, or bind to them.
//   bp::nats::storage       file (survives a server restart) or memory.
//
//   bp::nats::options o{.servers = {"nats://127.0.0.1:4222"},
//                       .stream = "ORDERS", .subject = "orders",
//                       .capacity = 1000, .policy = bp::overflow::block,
//                       .ack_wait = std::chrono::seconds(30)};
//
// Every duration is a std::chrono::milliseconds (nats.c mixes milliseconds and nanoseconds;
// the conversion happens inside). Invalid values throw std::invalid_argument naming the field
// when a sender or receiver is constructed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <bp/status.hpp>

namespace bp::nats {

enum class stream_setup {
  create,  // create the stream (or update it to these options); the durable is created too
  bind,    // the stream must exist (else bp::nats::error) and is used as it is; policy must
           // match its discard setting; the durable is created if missing
};

enum class storage { file, memory };

struct tls_options {
  bool enabled = false;                   // require TLS (also implied by a tls:// URL)
  std::string ca_file{};                  // PEM file of trusted CAs
  std::string cert_file{};                // client certificate chain (mutual TLS) ...
  std::string key_file{};                 // ... and its private key
  std::string expected_hostname{};        // name to check in the server certificate
  bool skip_server_verification = false;  // for tests only
};

struct auth_options {
  std::string user{};  // user/password
  std::string password{};
  std::string token{};             // token
  std::string credentials_file{};  // a .creds file (user JWT and NKey seed)
  std::string nkey_seed_file{};    // an NKey seed file (needs the public key in `nkey_public`)
  std::string nkey_public{};
};

struct options {
  // --- connection -------------------------------------------------------------------------------
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};  // URLs of one cluster
  std::string connection_name{};                              // shown by the server's monitoring
  std::chrono::milliseconds connect_timeout{2000};
  int max_reconnect = 60;  // attempts after a lost connection
  std::chrono::milliseconds reconnect_wait{250};
  tls_options tls{};
  auth_options auth{};
  // true: every publish and pull request leaves at once. false: nats.c buffers them and a
  // background thread flushes, which caps small producer windows and fetch batches at about
  // 1000 round trips a second (docs/distributed.md has bench_nats's numbers).
  bool send_asap = true;
  // JetStream API calls (stream info, consumer setup) and each publish wait at most this long
  // for the server's answer (a timed verb: at most its time left; an untimed send: at most
  // what is left of publish_retry_for).
  std::chrono::milliseconds request_timeout{5000};

  // --- the stream: the bounded buffer between processes ------------------------------------------
  std::string stream{};               // stream name (no '.', '*', '>' or spaces)
  std::string subject{};              // the subject the stream stores and senders publish on
  std::size_t capacity = 0;           // MaxMsgs; 0 = no message limit (then max_bytes must be set)
  std::int64_t max_bytes = 0;         // MaxBytes; 0 = no byte limit
  std::int32_t max_message_size = 0;  // MaxMsgSize; 0 = the server's max_payload (1 MB)
  bp::overflow policy = bp::overflow::block;
  storage store = storage::file;
  int replicas = 1;  // > 1 needs a JetStream cluster
  stream_setup setup = stream_setup::create;
  // The server drops a repeated message id inside this window: a publish retried after a lost
  // acknowledgement is stored once.
  std::chrono::milliseconds duplicate_window{std::chrono::minutes(2)};

  // --- sender -----------------------------------------------------------------------------------
  // 0: each send waits for the server's acknowledgement and answers exactly like bp::channel.
  // n > 0: producer window (Kafka's max.in.flight): up to n unacknowledged publishes, send()
  // answers ok once the message is in the window; flush_for() waits for the acknowledgements.
  // A send waiting in a full window resumes once an eighth of it is free (a burst of sends per
  // wake-up, not one), or at its deadline or retry_backoff_max with any free slot.
  // Only with policy block or drop_oldest (the others must answer at once).
  std::size_t max_in_flight = 0;
  // While a block-policy send waits for room it retries with this backoff, doubling from min
  // to max (the server does not notify a publisher that room freed up).
  std::chrono::milliseconds retry_backoff_min{1};
  std::chrono::milliseconds retry_backoff_max{50};
  // A publish whose acknowledgement is lost (server restart, leader election) is retried with
  // the same message id for this long, from the start of the first attempt whose answer was
  // lost, before an untimed send throws bp::nats::error (0: one attempt of request_timeout).
  std::chrono::milliseconds publish_retry_for{std::chrono::seconds(10)};
  // close() publishes an end-of-stream marker (it takes a slot) waiting at most this long.
  std::chrono::milliseconds close_timeout{std::chrono::seconds(10)};

  // --- receiver ---------------------------------------------------------------------------------
  std::string durable{};  // durable consumer name; empty = "<stream>_bp"
  // A delivered message not acknowledged within ack_wait is delivered again (to any receiver of
  // the durable): a crashed consumer loses nothing.
  std::chrono::milliseconds ack_wait{std::chrono::seconds(30)};
  // At most this many delivered-but-unacknowledged messages per durable: the credit window.
  std::int64_t max_ack_pending = 1024;
  std::int64_t max_deliver = -1;  // deliveries per message before giving up; -1 = unlimited
  // Messages pulled per request (at most max_ack_pending). recv() hands them out one by one;
  // the rest wait, unacknowledged, in this receiver: a crash returns them after ack_wait, but
  // other receivers of the durable cannot take them meanwhile. 1 for strict work sharing.
  int fetch_batch = 32;
  // recv() without a timeout long-polls the server in requests of this length.
  std::chrono::milliseconds fetch_wait{std::chrono::seconds(1)};
};

}  // namespace bp::nats
