// Connecting to NATS and turning nats.c's failures into bp::nats::error. Every option of the
// connection part of bp::nats::options is applied here and nowhere else, so the sender, the
// receiver and the token bucket connect alike; a failure names the option it came from.
#include <algorithm>
#include <array>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include <nats/nats.h>

#include <bp/nats/error.hpp>

#include "connection.hpp"

namespace bp::nats::detail {
namespace {

std::string describe(natsStatus s) {
  std::string text = natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  if (detail != nullptr && *detail != '\0' && text != detail) text += std::string(": ") + detail;
  return text;
}

struct nats_options_guard {
  natsOptions* p = nullptr;
  ~nats_options_guard() { natsOptions_Destroy(p); }
};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

void message_bin::put(natsMsg* m) noexcept {
  if (m == nullptr) return;
  std::unique_lock lock(mu_);
  held_[count_++] = m;
  bytes_ += static_cast<std::size_t>(natsMsg_GetDataLength(m));
  if (count_ == max_run || bytes_ >= max_bytes) release(lock);
}

void message_bin::flush() noexcept {
  std::unique_lock lock(mu_);
  if (count_ > 0) release(lock);
}

void message_bin::release(std::unique_lock<std::mutex>& lock) noexcept {
  std::array<natsMsg*, max_run> run;
  const std::size_t n = count_;
  std::copy_n(held_.begin(), n, run.begin());
  count_ = 0;
  bytes_ = 0;
  lock.unlock();
  // In one go, so the collector thread is woken once for the run.
  for (std::size_t i = 0; i < n; ++i) natsMsg_Destroy(run[i]);
}

void throw_nats(const std::string& what, natsStatus s, int js) {
  std::string msg = "bp::nats: " + what + ": " + describe(s);
  if (js != 0) msg += " (JetStream error " + std::to_string(js) + ")";
  throw error(msg, static_cast<int>(s), js);
}

void check(natsStatus s, const std::string& what) {
  if (s != NATS_OK) throw_nats(what, s);
}

std::shared_ptr<connection> open_connection(const options& o, jsOptions* jso) {
  nats_options_guard no;
  check(natsOptions_Create(&no.p), "creating connection options");
  std::vector<const char*> urls;
  for (const auto& s : o.servers) urls.push_back(s.c_str());
  check(natsOptions_SetServers(no.p, urls.data(), static_cast<int>(urls.size())), "servers");
  if (!o.connection_name.empty())
    check(natsOptions_SetName(no.p, o.connection_name.c_str()), "connection_name");
  check(natsOptions_SetTimeout(no.p, o.connect_timeout.count()), "connect_timeout");
  check(natsOptions_SetAllowReconnect(no.p, o.max_reconnect != 0), "max_reconnect");
  check(natsOptions_SetMaxReconnect(no.p, o.max_reconnect), "max_reconnect");
  check(natsOptions_SetReconnectWait(no.p, o.reconnect_wait.count()), "reconnect_wait");
  if (o.send_asap) check(natsOptions_SetSendAsap(no.p, true), "send_asap");
  const auto& a = o.auth;
  if (!a.user.empty())
    check(natsOptions_SetUserInfo(no.p, a.user.c_str(), a.password.c_str()), "auth.user");
  if (!a.token.empty()) check(natsOptions_SetToken(no.p, a.token.c_str()), "auth.token");
  if (!a.credentials_file.empty())
    check(natsOptions_SetUserCredentialsFromFiles(no.p, a.credentials_file.c_str(), nullptr),
          "auth.credentials_file");
  if (!a.nkey_seed_file.empty())
    check(natsOptions_SetNKeyFromSeed(no.p, a.nkey_public.c_str(), a.nkey_seed_file.c_str()),
          "auth.nkey_seed_file");
  const auto& t = o.tls;
  if (t.enabled) check(natsOptions_SetSecure(no.p, true), "tls.enabled");
  if (!t.ca_file.empty())
    check(natsOptions_LoadCATrustedCertificates(no.p, t.ca_file.c_str()), "tls.ca_file");
  if (!t.cert_file.empty() || !t.key_file.empty())
    check(natsOptions_LoadCertificatesChain(no.p, t.cert_file.c_str(), t.key_file.c_str()),
          "tls.cert_file/key_file");
  if (!t.expected_hostname.empty())
    check(natsOptions_SetExpectedHostname(no.p, t.expected_hostname.c_str()),
          "tls.expected_hostname");
  if (t.skip_server_verification)
    check(natsOptions_SkipServerVerification(no.p, true), "tls.skip_server_verification");

  auto c = std::make_shared<connection>();
  natsStatus s = natsConnection_Connect(&c->nc, no.p);
  if (s != NATS_OK) throw_nats("cannot connect to " + join(o.servers), s);
  s = natsConnection_JetStream(&c->js, c->nc, jso);
  if (s != NATS_OK) throw_nats("cannot create a JetStream context", s);
  return c;
}

}  // namespace bp::nats::detail
