#include "bridge/internal/connection_start.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "bridge/internal/http2_session.h"
#include "bridge/internal/session.h"
#include "bridge/internal/transport.h"

namespace gravity::bridge::internal {

namespace net = boost::asio;
using boost::system::error_code;

namespace {

constexpr absl::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// One connection between its accept and its codec; owned by its pending
// operations, as the codecs are.
class Starter : public std::enable_shared_from_this<Starter> {
 public:
  Starter(Transport transport, std::shared_ptr<BridgeState> state,
          std::function<void(std::shared_ptr<Connection>)> adopt)
      : transport_(std::move(transport)),
        state_(std::move(state)),
        adopt_(std::move(adopt)),
        timer_(transport_.get_executor()) {}

  void Begin() {
    net::post(transport_.get_executor(), [self = shared_from_this()] {
      if (self->transport_.tls()) {
        self->Handshake();
      } else if (self->state_->options.http2) {
        self->Sniff();
      } else {
        self->Hand(Protocol::kHttp1);
      }
    });
  }

 private:
  void Handshake() {
    Bound(state_->options.tls_handshake_timeout);
    transport_.tls_stream().async_handshake(
        net::ssl::stream_base::server, [self = shared_from_this()](error_code ec) {
          self->timer_.cancel();
          if (ec) {
            self->state_->metrics.tls_handshakes_failed++;
            self->transport_.Close();
            return;
          }
          self->Hand(self->transport_.alpn() == "h2" && self->state_->options.http2
                         ? Protocol::kH2
                         : Protocol::kHttp1);
        });
  }

  void Sniff() {
    Bound(state_->options.header_timeout);
    ReadMore();
  }

  void ReadMore() {
    transport_.async_read_some(
        buffer_.prepare(kPreface.size() - std::min(buffer_.size(), kPreface.size()) + 1024),
        [self = shared_from_this()](error_code ec, size_t bytes) {
          if (ec) {
            self->timer_.cancel();
            self->transport_.Close();  // gone, or silent for the header timeout
            return;
          }
          self->buffer_.commit(bytes);
          const auto data = self->buffer_.data();
          switch (
              MatchPreface(absl::string_view(static_cast<const char*>(data.data()), data.size()))) {
            case Preface::kMaybe:
              self->ReadMore();
              return;
            case Preface::kHttp2:
              self->timer_.cancel();
              self->Hand(Protocol::kH2c);
              return;
            case Preface::kNot:
              self->timer_.cancel();
              self->Hand(Protocol::kHttp1);
              return;
          }
        });
  }

  // The step's time bound: the connection closes when it is over.
  void Bound(absl::Duration after) {
    timer_.expires_after(absl::ToChronoNanoseconds(after));
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec == net::error::operation_aborted || self->handed_) return;
      self->transport_.Close();  // the pending step ends with an error (and is counted there)
    });
  }

  void Hand(Protocol protocol) {
    handed_ = true;
    std::shared_ptr<Connection> connection;
    if (protocol == Protocol::kHttp1) {
      connection = std::make_shared<Session>(std::move(transport_), std::move(buffer_), state_);
    } else {
      const auto data = buffer_.data();
      std::string received(static_cast<const char*>(data.data()), data.size());
      connection = std::make_shared<Http2Session>(std::move(transport_), std::move(received),
                                                  protocol, state_);
    }
    adopt_(std::move(connection));
  }

  Transport transport_;
  const std::shared_ptr<BridgeState> state_;
  const std::function<void(std::shared_ptr<Connection>)> adopt_;
  net::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  bool handed_ = false;  // the transport is the codec's now
};

}  // namespace

Preface MatchPreface(absl::string_view bytes) {
  const size_t n = std::min(bytes.size(), kPreface.size());
  if (bytes.substr(0, n) != kPreface.substr(0, n)) return Preface::kNot;
  return n == kPreface.size() ? Preface::kHttp2 : Preface::kMaybe;
}

void StartConnection(net::ip::tcp::socket socket, std::shared_ptr<BridgeState> state,
                     std::shared_ptr<net::ssl::context> tls,
                     std::function<void(std::shared_ptr<Connection>)> adopt) {
  Transport transport =
      tls != nullptr ? Transport(std::move(socket), std::move(tls)) : Transport(std::move(socket));
  std::make_shared<Starter>(std::move(transport), std::move(state), std::move(adopt))->Begin();
}

}  // namespace gravity::bridge::internal
