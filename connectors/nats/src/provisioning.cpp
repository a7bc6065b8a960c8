// Provisioning of the work-queue stream and its durable pull consumer from bp::nats::options.
// Both ends provision, so either may start first: what already matches is left alone, and a
// stream the other end created meanwhile is updated rather than reported as a conflict.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <nats/nats.h>

#include <bp/nats/error.hpp>

#include "stream.hpp"

namespace bp::nats::detail {
namespace {

constexpr int js_stream_not_found = 10059;
constexpr int js_consumer_not_found = 10014;

struct stream_info_guard {
  jsStreamInfo* p = nullptr;
  ~stream_info_guard() { jsStreamInfo_Destroy(p); }
};

// Whether an existing stream already has what we would set: then nothing is sent (an update
// needs the cluster's meta leader, which may be in an election right after a node loss).
bool same_stream_config(const jsStreamConfig& a, const jsStreamConfig& b) {
  return a.SubjectsLen == 1 && a.Subjects != nullptr && a.Subjects[0] != nullptr &&
         std::strcmp(a.Subjects[0], b.Subjects[0]) == 0 && a.Retention == b.Retention &&
         a.MaxMsgs == b.MaxMsgs && a.MaxBytes == b.MaxBytes && a.MaxMsgSize == b.MaxMsgSize &&
         a.Discard == b.Discard && a.Storage == b.Storage && a.Replicas == b.Replicas &&
         a.Duplicates == b.Duplicates;
}

}  // namespace

jsOptions api_options(const options& o) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = o.request_timeout.count();
  return jo;
}

stream_facts ensure_stream(connection& c, const options& o) {
  jsOptions jo = api_options(o);
  stream_info_guard si;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si.p, c.js, o.stream.c_str(), &jo, &jerr);
  const bool missing = (s == NATS_NOT_FOUND || jerr == js_stream_not_found);
  if (s != NATS_OK && !missing) throw_nats("cannot read stream '" + o.stream + "'", s, jerr);

  if (o.setup == stream_setup::bind) {
    if (missing)
      throw error("bp::nats: stream '" + o.stream + "' not found (JetStream error " +
                      std::to_string(js_stream_not_found) +
                      "); create it or use stream_setup::create",
                  static_cast<int>(NATS_NOT_FOUND), js_stream_not_found);
    const auto& cfg = *si.p->Config;
    const bool discards_old = cfg.Discard == js_DiscardOld;
    if (discards_old != (o.policy == overflow::drop_oldest))
      throw error("bp::nats: stream '" + o.stream + "' discards " + (discards_old ? "old" : "new") +
                  " messages, which does not match policy " + std::string(to_string(o.policy)));
    stream_facts f;
    f.subject = !o.subject.empty()    ? o.subject
                : cfg.SubjectsLen > 0 ? cfg.Subjects[0]
                                      : throw error("bp::nats: stream '" + o.stream +
                                                    "' has no subject; set options.subject");
    f.capacity = cfg.MaxMsgs > 0 ? static_cast<std::size_t>(cfg.MaxMsgs) : 0;
    return f;
  }

  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {o.subject.c_str()};
  cfg.Name = o.stream.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Retention = js_WorkQueuePolicy;
  cfg.MaxMsgs = o.capacity > 0 ? static_cast<std::int64_t>(o.capacity) : -1;
  cfg.MaxBytes = o.max_bytes > 0 ? o.max_bytes : -1;
  cfg.MaxMsgSize = o.max_message_size > 0 ? o.max_message_size : -1;
  cfg.Discard = o.policy == overflow::drop_oldest ? js_DiscardOld : js_DiscardNew;
  cfg.Storage = o.store == storage::file ? js_FileStorage : js_MemoryStorage;
  cfg.Replicas = o.replicas;
  cfg.Duplicates = to_ns(o.duplicate_window);
  if (!missing && same_stream_config(*si.p->Config, cfg)) return {o.subject, o.capacity};
  stream_info_guard out;
  jerr = static_cast<jsErrCode>(0);
  s = missing ? js_AddStream(&out.p, c.js, &cfg, &jo, &jerr)
              : js_UpdateStream(&out.p, c.js, &cfg, &jo, &jerr);
  if (s != NATS_OK && missing && jerr == 10058) {  // created concurrently by the other end
    jerr = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&out.p, c.js, &cfg, &jo, &jerr);
  }
  if (s != NATS_OK)
    throw_nats(
        std::string(missing ? "cannot create" : "cannot update") + " stream '" + o.stream + "'", s,
        jerr);
  return {o.subject, o.capacity};
}

std::uint64_t ensure_consumer(connection& c, const options& o, const std::string& durable) {
  jsOptions jo = api_options(o);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.DeliverPolicy = js_DeliverAll;
  cc.AckWait = to_ns(o.ack_wait);
  cc.MaxAckPending = o.max_ack_pending;
  cc.MaxDeliver = o.max_deliver;
  consumer_info_guard ci;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&ci.p, c.js, o.stream.c_str(), durable.c_str(), &jo, &jerr);
  const bool missing = (s == NATS_NOT_FOUND || jerr == js_consumer_not_found);
  if (s != NATS_OK && !missing)
    throw_nats("cannot read consumer '" + durable + "' of stream '" + o.stream + "'", s, jerr);
  if (!missing) {
    const auto& have = *ci.p->Config;
    if (have.AckPolicy == cc.AckPolicy && have.AckWait == cc.AckWait &&
        have.MaxAckPending == cc.MaxAckPending && have.MaxDeliver == cc.MaxDeliver)
      return ci.p->Delivered.Stream;
  }
  consumer_info_guard out;
  jerr = static_cast<jsErrCode>(0);
  s = missing ? js_AddConsumer(&out.p, c.js, o.stream.c_str(), &cc, &jo, &jerr)
              : js_UpdateConsumer(&out.p, c.js, o.stream.c_str(), &cc, &jo, &jerr);
  if (s != NATS_OK)
    throw_nats(std::string(missing ? "cannot create" : "cannot update") + " consumer '" + durable +
                   "' of stream '" + o.stream + "'",
               s, jerr);
  return out.p->Delivered.Stream;
}

stream_state read_state(connection& c, const options& o) {
  jsOptions jo = api_options(o);
  stream_info_guard si;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si.p, c.js, o.stream.c_str(), &jo, &jerr);
  if (s != NATS_OK) throw_nats("cannot read stream '" + o.stream + "'", s, jerr);
  stream_state st;
  st.messages = si.p->State.Msgs;
  st.bytes = si.p->State.Bytes;
  st.first_seq = si.p->State.FirstSeq;
  st.last_seq = si.p->State.LastSeq;
  st.consumers = si.p->State.Consumers;
  st.max_messages =
      si.p->Config->MaxMsgs > 0 ? static_cast<std::uint64_t>(si.p->Config->MaxMsgs) : 0;
  st.max_bytes = si.p->Config->MaxBytes > 0 ? si.p->Config->MaxBytes : 0;
  return st;
}

}  // namespace bp::nats::detail
