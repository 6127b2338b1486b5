//! ICE over TCP (RFC 6544), for networks where UDP cannot pass: lkrtc opens active TCP
//! connections to the server's passive TCP candidates (livekit-server's `rtc.tcp_port`) and
//! carries STUN, DTLS and SRTP on them in RFC 4571 frames (a 2-byte big-endian length before
//! each packet). str0m pairs the local active candidate with those candidates like any other
//! and hands out transmits marked TCP; this module turns them into connections.
//!
//! A connection is opened by a STUN binding request, as the passive side (pion's TCP mux)
//! demultiplexes a new connection by the USERNAME of its first request. An ICE restart changes
//! that username, so it gets a connection of its own; everything else goes on the newest
//! connection to the destination.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// RFC 4571's length field is 16 bits.
const MAX_FRAME: usize = u16::MAX as usize;
/// Packets waiting for one connection's socket. A full queue drops (like a full UDP buffer):
/// TCP already retransmits, and a queue longer than this is latency nobody wants.
const SEND_QUEUE: usize = 512;
/// Packets received on all connections, waiting for the transport's task.
const RECV_QUEUE: usize = 1024;
/// Connections held at once (destinations x ICE generations); the oldest goes first.
const MAX_LINKS: usize = 8;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the connections report to the transport's task.
#[derive(Debug)]
pub(crate) enum TcpEvent {
  /// A packet from `remote`.
  Packet(SocketAddr, Vec<u8>),
  /// Connection `id` could not connect, or ended.
  Closed(u64),
}

struct Link {
  id: u64,
  remote: SocketAddr,
  /// The USERNAME of the STUN request that opened it.
  username: Vec<u8>,
  queue: mpsc::Sender<Vec<u8>>,
  task: JoinHandle<()>,
}

/// The transport's TCP connections. Dropping it closes them all.
pub(crate) struct TcpLinks {
  links: Vec<Link>,
  next_id: u64,
  events: mpsc::Sender<TcpEvent>,
}

impl TcpLinks {
  pub fn new() -> (TcpLinks, mpsc::Receiver<TcpEvent>) {
    let (events, rx) = mpsc::channel(RECV_QUEUE);
    (
      TcpLinks {
        links: Vec::new(),
        next_id: 0,
        events,
      },
      rx,
    )
  }

  /// Sends one packet to `remote`, opening a connection for a binding request that has none.
  /// Anything else without a connection is dropped: only a binding request may open one.
  pub fn send(&mut self, remote: SocketAddr, packet: &[u8]) {
    if packet.len() > MAX_FRAME {
      tracing::debug!(%remote, len = packet.len(), "packet too large for a TCP frame");
      return;
    }
    let index = match binding_request_username(packet) {
      Some(username) => match self
        .links
        .iter()
        .position(|l| l.remote == remote && l.username == username)
      {
        Some(i) => i,
        None => self.open(remote, username.to_vec()),
      },
      None => match self.links.iter().rposition(|l| l.remote == remote) {
        Some(i) => i,
        None => return,
      },
    };
    if self.links[index].queue.try_send(frame(packet)).is_err() {
      tracing::trace!(%remote, "TCP send queue full, packet dropped");
    }
  }

  /// Forgets a connection that reported `Closed`; the next binding request opens a new one.
  pub fn closed(&mut self, id: u64) {
    self.links.retain(|l| l.id != id);
  }

  fn open(&mut self, remote: SocketAddr, username: Vec<u8>) -> usize {
    if self.links.len() >= MAX_LINKS {
      let old = self.links.remove(0);
      old.task.abort();
    }
    let id = self.next_id;
    self.next_id += 1;
    let (queue, packets) = mpsc::channel(SEND_QUEUE);
    let task = tokio::spawn(run_link(id, remote, packets, self.events.clone()));
    tracing::debug!(%remote, id, "opening ICE-TCP connection");
    self.links.push(Link {
      id,
      remote,
      username,
      queue,
      task,
    });
    self.links.len() - 1
  }
}

impl Drop for TcpLinks {
  fn drop(&mut self) {
    for l in &self.links {
      l.task.abort();
    }
  }
}

async fn run_link(id: u64, remote: SocketAddr, mut packets: mpsc::Receiver<Vec<u8>>, events: mpsc::Sender<TcpEvent>) {
  let result: std::io::Result<()> = async {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(remote))
      .await
      .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    // Media is latency-bound: no Nagle delay on small packets.
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let reading = async {
      let mut read = BufReader::new(read);
      let mut buf = vec![0u8; MAX_FRAME];
      loop {
        let n = read_frame(&mut read, &mut buf).await?;
        if events.send(TcpEvent::Packet(remote, buf[..n].to_vec())).await.is_err() {
          return Ok(());
        }
      }
    };
    let writing = write_queued(write, &mut packets);
    tokio::select! {
      r = reading => r,
      r = writing => r,
    }
  }
  .await;
  if let Err(e) = result {
    tracing::debug!(%remote, id, "ICE-TCP connection ended: {e}");
  }
  let _ = events.send(TcpEvent::Closed(id)).await;
}

/// One packet with its RFC 4571 length prefix. `packet` is at most `MAX_FRAME` bytes.
pub(crate) fn frame(packet: &[u8]) -> Vec<u8> {
  let mut out = Vec::with_capacity(packet.len() + 2);
  out.extend_from_slice(&(packet.len() as u16).to_be_bytes());
  out.extend_from_slice(packet);
  out
}

/// Reads one RFC 4571 frame into `buf` (at least `MAX_FRAME` long); returns its length.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(read: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
  let mut len = [0u8; 2];
  read.read_exact(&mut len).await?;
  let n = u16::from_be_bytes(len) as usize;
  read.read_exact(&mut buf[..n]).await?;
  Ok(n)
}

/// The USERNAME attribute of a STUN binding request (RFC 5389), or `None` for anything else.
pub(crate) fn binding_request_username(packet: &[u8]) -> Option<&[u8]> {
  const HEADER: usize = 20;
  const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
  const BINDING_REQUEST: u16 = 0x0001;
  const USERNAME: u16 = 0x0006;
  if packet.len() < HEADER || packet[4..8] != MAGIC_COOKIE {
    return None;
  }
  if u16::from_be_bytes([packet[0], packet[1]]) != BINDING_REQUEST {
    return None;
  }
  let body_len = u16::from_be_bytes([packet[2], packet[3]]) as usize;
  let body = packet.get(HEADER..HEADER + body_len)?;
  let mut at = 0;
  while at + 4 <= body.len() {
    let kind = u16::from_be_bytes([body[at], body[at + 1]]);
    let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
    let value = body.get(at + 4..at + 4 + len)?;
    if kind == USERNAME {
      return Some(value);
    }
    // Attributes are padded to 4 bytes.
    at += 4 + len.div_ceil(4) * 4;
  }
  None
}

/// Writes what `queue` brings to `write` until the queue closes: whatever is queued at a time
/// goes out in one write (already framed by the sender).
pub(crate) async fn write_queued<W: AsyncWrite + Unpin>(
  write: W,
  queue: &mut mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
  let mut write = BufWriter::new(write);
  while let Some(p) = queue.recv().await {
    write.write_all(&p).await?;
    while let Ok(p) = queue.try_recv() {
      write.write_all(&p).await?;
    }
    write.flush().await?;
  }
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  /// A binding request with USERNAME `user` and one padded attribute before it.
  fn request(user: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    // PRIORITY (0x0024), 4 bytes.
    body.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
    body.extend_from_slice(&0x0006u16.to_be_bytes());
    body.extend_from_slice(&(user.len() as u16).to_be_bytes());
    body.extend_from_slice(user);
    body.resize(body.len().div_ceil(4) * 4, 0);
    let mut p = vec![0x00, 0x01];
    p.extend_from_slice(&(body.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    p.extend_from_slice(&[7; 12]);
    p.extend_from_slice(&body);
    p
  }

  #[test]
  fn finds_the_username_of_a_binding_request() {
    let p = request(b"srvUfrag:ourUfrag");
    assert_eq!(binding_request_username(&p), Some(&b"srvUfrag:ourUfrag"[..]));
  }

  #[test]
  fn a_binding_response_has_no_username_to_route_by() {
    let mut p = request(b"a:b");
    p[0..2].copy_from_slice(&0x0101u16.to_be_bytes());
    assert_eq!(binding_request_username(&p), None);
  }

  #[test]
  fn truncated_or_foreign_packets_have_no_username() {
    let p = request(b"srv:ours");
    assert_eq!(binding_request_username(&p[..p.len() - 4]), None);
    assert_eq!(binding_request_username(&[0x80, 0x60, 0, 1]), None); // RTP
    assert_eq!(binding_request_username(&[22; 40]), None); // DTLS record
  }

  #[tokio::test]
  async fn frames_read_back_whole_across_split_writes() {
    let (mut a, mut b) = tokio::io::duplex(64);
    let packets: Vec<Vec<u8>> = vec![vec![1; 3], vec![], vec![9; 1200], vec![4; 70]];
    let sent = packets.clone();
    let writer = tokio::spawn(async move {
      for p in &sent {
        // Byte by byte: the reader must not rely on a frame arriving in one read.
        for byte in frame(p) {
          a.write_all(&[byte]).await.unwrap();
        }
      }
    });
    let mut buf = vec![0u8; MAX_FRAME];
    for p in &packets {
      let n = read_frame(&mut b, &mut buf).await.unwrap();
      assert_eq!(&buf[..n], &p[..]);
    }
    writer.await.unwrap();
    // The writer is gone: the stream ends, which is an error mid-frame, not a hang.
    assert!(read_frame(&mut b, &mut buf).await.is_err());
  }
}
