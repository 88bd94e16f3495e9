//! Parsing pgoutput (protocol version 1) messages from the payload of an XLogData frame.
//!
//! The bytes come from the network and are treated as untrusted: every read is bounds-checked,
//! counts never size an allocation beyond what the remaining bytes could hold, and any input,
//! however malformed, yields a [`ParseError`] rather than a panic (the `parse_message` fuzz
//! target in `crates/source/fuzz` holds this).

use std::fmt;

use walproof_core::{Lsn, ReplicaIdentity};

use super::message::{Message, OldTuple, RelationColumn, RelationMessage, TupleColumn, TupleData};

/// Microseconds from the Unix epoch (1970-01-01) to the Postgres epoch (2000-01-01), which
/// pgoutput's timestamps count from.
pub const POSTGRES_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// Converts a pgoutput timestamp (µs since 2000-01-01) to µs since the Unix epoch, saturating
/// at the ends of `i64` (Postgres's `infinity` timestamps are `i64::MAX` and `i64::MIN`).
pub fn pg_time_to_unix_us(t: i64) -> i64 {
    t.saturating_add(POSTGRES_EPOCH_OFFSET_US)
}

/// Bytes that are not a valid pgoutput (protocol version 1) message.
///
/// Every variant is fatal for the stream it came from: the bytes will not parse differently on
/// a retry, and skipping a message would lose a change. Offsets count from the message's first
/// byte (its type tag); column positions count from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The payload has no bytes at all, not even a message type.
    #[error("empty pgoutput message: not even the one-byte message type")]
    Empty,
    /// The first byte is not a protocol version 1 message type.
    #[error(
        "unknown pgoutput message type {}: protocol version 1 has B, C, O, R, Y, I, U, D, T and M",
        ShowByte(*.tag)
    )]
    UnknownMessageType {
        /// The message type byte.
        tag: u8,
    },
    /// The message ends before a field does.
    #[error(
        "{message} message is truncated: {field} at byte {offset} needs {needed} bytes, \
         only {available} left"
    )]
    Truncated {
        /// The message type, e.g. `"Insert"`.
        message: &'static str,
        /// The field being read.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the message from `offset`.
        available: usize,
    },
    /// A string runs to the end of the message without its NUL terminator.
    #[error("{message} message: {field} starting at byte {offset} has no NUL terminator")]
    UnterminatedString {
        /// The message type.
        message: &'static str,
        /// The string field.
        field: &'static str,
        /// Where the string starts.
        offset: usize,
    },
    /// A string field is not UTF-8.
    #[error("{message} message: {field} is not valid UTF-8 (first invalid byte at {offset})")]
    InvalidUtf8 {
        /// The message type.
        message: &'static str,
        /// The string field.
        field: &'static str,
        /// The first byte that is not valid UTF-8.
        offset: usize,
    },
    /// A text-format column value is not UTF-8.
    #[error(
        "{message} message: text value of column {column} is not valid UTF-8 \
         (first invalid byte at {offset})"
    )]
    InvalidColumnText {
        /// The message type.
        message: &'static str,
        /// The column's position in its tuple.
        column: usize,
        /// The first byte that is not valid UTF-8.
        offset: usize,
    },
    /// A tuple marker is not one the message allows at that point.
    #[error(
        "{message} message: expected tuple marker {expected} at byte {offset}, found {}",
        ShowByte(*.kind)
    )]
    UnknownTupleKind {
        /// The message type.
        message: &'static str,
        /// The markers allowed there, e.g. `"'K' or 'O'"`.
        expected: &'static str,
        /// The byte found.
        kind: u8,
        /// Where the marker is.
        offset: usize,
    },
    /// A tuple column has a kind other than `n`, `u`, `t` or `b`.
    #[error(
        "{message} message: column {column} at byte {offset} has unknown kind {} \
         (expected 'n', 'u', 't' or 'b')",
        ShowByte(*.kind)
    )]
    UnknownColumnKind {
        /// The message type.
        message: &'static str,
        /// The column's position in its tuple.
        column: usize,
        /// The kind byte.
        kind: u8,
        /// Where the kind byte is.
        offset: usize,
    },
    /// A relation's replica identity is not `d`, `n`, `f` or `i`.
    #[error(
        "Relation message: relation {relation} has unknown replica identity {} \
         (expected 'd', 'n', 'f' or 'i')",
        ShowByte(*.value)
    )]
    UnknownReplicaIdentity {
        /// The relation's OID.
        relation: u32,
        /// The replica identity byte.
        value: u8,
    },
    /// Flag bits the protocol does not define, whose meaning would be lost if ignored.
    #[error(
        "{message} message: {field} {flags:#04x} at byte {offset} sets bits outside {known:#04x}"
    )]
    UnknownFlags {
        /// The message type.
        message: &'static str,
        /// The flags field.
        field: &'static str,
        /// The flags byte.
        flags: u8,
        /// The bits the protocol defines.
        known: u8,
        /// Where the flags byte is.
        offset: usize,
    },
    /// A length field is negative.
    #[error("{message} message: {field} at byte {offset} is negative ({length})")]
    NegativeLength {
        /// The message type.
        message: &'static str,
        /// The length field.
        field: &'static str,
        /// Where the length is.
        offset: usize,
        /// The length as sent.
        length: i32,
    },
    /// Bytes follow the message's last field.
    #[error("{message} message ends at byte {offset} but {remaining} more bytes follow")]
    TrailingBytes {
        /// The message type.
        message: &'static str,
        /// Where the message's fields ended.
        offset: usize,
        /// How many bytes follow.
        remaining: usize,
    },
}

/// Prints a protocol byte as `'K' (0x4b)`, or just `0x00` when it is not a printable character.
struct ShowByte(u8);

impl fmt::Display for ShowByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}' ({:#04x})", char::from(self.0), self.0)
        } else {
            write!(f, "{:#04x}", self.0)
        }
    }
}

/// Parses one pgoutput message from the payload of an XLogData frame, borrowing its strings and
/// values from `data`.
///
/// The whole payload must be exactly one message: bytes after its last field are an error.
///
/// ```
/// use walproof_source::pgoutput::{Message, TupleColumn, parse_message};
///
/// // Insert into relation 16384 a row of two columns: the text "42" and NULL.
/// let data = b"I\0\0\x40\x00N\0\x02t\0\0\0\x0242n";
/// let Message::Insert { relation, new } = parse_message(data)? else { unreachable!() };
/// assert_eq!(relation, 16384);
/// assert_eq!(new.columns, [TupleColumn::Text("42"), TupleColumn::Null]);
/// # Ok::<(), walproof_source::pgoutput::ParseError>(())
/// ```
pub fn parse_message(data: &[u8]) -> Result<Message<'_>, ParseError> {
    let (&tag, body) = data.split_first().ok_or(ParseError::Empty)?;
    let (message, parse): (&'static str, Parser<'_>) = match tag {
        b'B' => ("Begin", parse_begin),
        b'C' => ("Commit", parse_commit),
        b'O' => ("Origin", parse_origin),
        b'R' => ("Relation", parse_relation),
        b'Y' => ("Type", parse_type),
        b'I' => ("Insert", parse_insert),
        b'U' => ("Update", parse_update),
        b'D' => ("Delete", parse_delete),
        b'T' => ("Truncate", parse_truncate),
        b'M' => ("Message", parse_logical_message),
        _ => return Err(ParseError::UnknownMessageType { tag }),
    };
    let mut reader = Reader {
        message,
        rest: body,
        offset: 1,
    };
    let parsed = parse(&mut reader)?;
    reader.finish()?;
    Ok(parsed)
}

/// Parses the fields after the type tag of one message type.
type Parser<'a> = fn(&mut Reader<'a>) -> Result<Message<'a>, ParseError>;

fn parse_begin<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, ParseError> {
    Ok(Message::Begin {
        final_lsn: r.lsn("final LSN")?,
        commit_time: r.i64("commit time")?,
        xid: r.u32("xid")?,
    })
}

fn parse_commit<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, ParseError> {
    Ok(Message::Commit {
        flags: r.u8("flags")?,
        commit_lsn: r.lsn("commit LSN")?,
        end_lsn: r.lsn("end LSN")?,
        commit_time: r.i64("commit time")?,
    })
}

fn parse_origin<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, ParseError> {
    Ok(Message::Origin {
        commit_lsn: r.lsn("origin commit LSN")?,
        name: r.string("origin name")?,
    })
}

/// The fewest bytes a relation column can take: flags, an empty name's NUL, type OID and
/// type modifier.
const MIN_RELATION_COLUMN_LEN: usize = 1 + 1 + 4 + 4;

fn parse_relation<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, ParseError> {
    let id = r.u32("relation id")?;
    let namespace = r.string("namespace")?;
    let name = r.string("relation name")?;
    let value = r.u8("replica identity")?;
    let replica_identity =
        ReplicaIdentity::from_code(value).ok_or(ParseError::UnknownReplicaIdentity {
            relation: id,
            value,
        })?;
    let count = usize::from(r.u16("column count")?);
    let mut columns = Vec::with_capacity(count.min(r.rest.len() / MIN_RELATION_COLUMN_LEN));
    for _ in 0..count {
        columns.push(RelationColumn {
            // Bit 1 marks a key column; Postgres defines no other bit.
            key: r.u8("column flags")? & 1 != 0,
            name: r.string("column name")?,
            type_oid: r.u32("column type OID")?,
            type_modifier: r.i32("column type modifier")?,
        });
    }
    Ok(Message::Relation(RelationMessage {
        id,
        namespace,
        name,
        replica_identity,
        columns,
    }))
}

fn parse_type<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, ParseError> {
    Ok(Message::Type {
        id: r.u32("type OID")?,
        namespace: r.string("type namespace")?,
        name: r.string("type name")?,
    })
}

fn parse_insert<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, ParseError> {
    let relation = r.u32("relation id")?;
    r.expect_marker(b'N', "'N'")?;
    Ok(Message::Insert {
        relation,
        new: r.tuple()?,
    })
}

fn parse_update<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, ParseError> {
    let relation = r.u32("relation id")?;
    let offset = r.offset;
    let old = match r.u8("tuple marker")? {
        b'K' => Some(OldTuple::Key(r.tuple()?)),
        b'O' => Some(OldTuple::Full(r.tuple()?)),
        b'N' => None,
        kind => return Err(r.unknown_tuple_kind("'K', 'O' or 'N'", kind, offset)),
    };
    if old.is_some() {
        r.expect_marker(b'N', "'N'")?;
    }
    Ok(Message::Update {
        relation,
        old,
        new: r.tuple()?,
    })
}

fn parse_delete<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, ParseError> {
    let relation = r.u32("relation id")?;
    let offset = r.offset;
    let old = match r.u8("tuple marker")? {
        b'K' => OldTuple::Key(r.tuple()?),
        b'O' => OldTuple::Full(r.tuple()?),
        kind => return Err(r.unknown_tuple_kind("'K' or 'O'", kind, offset)),
    };
    Ok(Message::Delete { relation, old })
}

const TRUNCATE_CASCADE: u8 = 1;
const TRUNCATE_RESTART_IDENTITY: u8 = 2;

fn parse_truncate<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, ParseError> {
    let count = r.u32("relation count")?;
    let options = r.flags("option bits", TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY)?;
    // An OID takes 4 bytes: a count beyond what is left fails below, without allocating for it.
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut relations = Vec::with_capacity(count.min(r.rest.len() / 4));
    for _ in 0..count {
        relations.push(r.u32("relation id")?);
    }
    Ok(Message::Truncate {
        cascade: options & TRUNCATE_CASCADE != 0,
        restart_identity: options & TRUNCATE_RESTART_IDENTITY != 0,
        relations,
    })
}

const MESSAGE_TRANSACTIONAL: u8 = 1;

fn parse_logical_message<'a>(r: &mut Reader<'a>) -> Result<Message<'a>, ParseError> {
    let flags = r.flags("flags", MESSAGE_TRANSACTIONAL)?;
    Ok(Message::Message {
        transactional: flags & MESSAGE_TRANSACTIONAL != 0,
        lsn: r.lsn("message LSN")?,
        prefix: r.string("prefix")?,
        content: r.sized("content length", "content")?,
    })
}

/// A cursor over one message's bytes. `offset` is the position of `rest` in the message and
/// never exceeds the message's length, so adding a length of `rest` to it cannot overflow.
struct Reader<'a> {
    /// The message type, named in errors.
    message: &'static str,
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, field: &'static str, needed: usize) -> Result<&'a [u8], ParseError> {
        let (head, tail) = self
            .rest
            .split_at_checked(needed)
            .ok_or_else(|| self.truncated(field, needed))?;
        self.rest = tail;
        self.offset += needed;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ParseError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or_else(|| self.truncated(field, N))?;
        self.rest = tail;
        self.offset += N;
        Ok(*head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, ParseError> {
        self.array::<1>(field).map(u8::from_be_bytes)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, ParseError> {
        self.array(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, ParseError> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, ParseError> {
        self.array(field).map(i32::from_be_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, ParseError> {
        self.array(field).map(i64::from_be_bytes)
    }

    fn lsn(&mut self, field: &'static str) -> Result<Lsn, ParseError> {
        self.array(field)
            .map(|bytes| Lsn::new(u64::from_be_bytes(bytes)))
    }

    /// A flags byte, refusing bits outside `known`.
    fn flags(&mut self, field: &'static str, known: u8) -> Result<u8, ParseError> {
        let offset = self.offset;
        let flags = self.u8(field)?;
        if flags & !known != 0 {
            return Err(ParseError::UnknownFlags {
                message: self.message,
                field,
                flags,
                known,
                offset,
            });
        }
        Ok(flags)
    }

    /// A NUL-terminated UTF-8 string, without its terminator.
    fn string(&mut self, field: &'static str) -> Result<&'a str, ParseError> {
        let offset = self.offset;
        let mut parts = self.rest.splitn(2, |&byte| byte == 0);
        let (Some(bytes), Some(tail)) = (parts.next(), parts.next()) else {
            return Err(ParseError::UnterminatedString {
                message: self.message,
                field,
                offset,
            });
        };
        let text = std::str::from_utf8(bytes).map_err(|err| ParseError::InvalidUtf8 {
            message: self.message,
            field,
            offset: offset + err.valid_up_to(),
        })?;
        self.offset += self.rest.len() - tail.len();
        self.rest = tail;
        Ok(text)
    }

    /// An Int32 length, then that many bytes.
    fn sized(
        &mut self,
        length_field: &'static str,
        field: &'static str,
    ) -> Result<&'a [u8], ParseError> {
        let offset = self.offset;
        let length = self.i32(length_field)?;
        let needed = usize::try_from(length).map_err(|_| ParseError::NegativeLength {
            message: self.message,
            field: length_field,
            offset,
            length,
        })?;
        self.bytes(field, needed)
    }

    fn expect_marker(&mut self, marker: u8, expected: &'static str) -> Result<(), ParseError> {
        let offset = self.offset;
        match self.u8("tuple marker")? {
            kind if kind == marker => Ok(()),
            kind => Err(self.unknown_tuple_kind(expected, kind, offset)),
        }
    }

    /// TupleData: an Int16 column count, then each column's kind and value.
    fn tuple(&mut self) -> Result<TupleData<'a>, ParseError> {
        let count = usize::from(self.u16("column count")?);
        // Each column takes at least its kind byte.
        let mut columns = Vec::with_capacity(count.min(self.rest.len()));
        for column in 0..count {
            let offset = self.offset;
            let value = match self.u8("column kind")? {
                b'n' => TupleColumn::Null,
                b'u' => TupleColumn::UnchangedToast,
                b't' => {
                    let start = self.offset + 4;
                    let bytes = self.sized("column value length", "column value")?;
                    let text = std::str::from_utf8(bytes).map_err(|err| {
                        ParseError::InvalidColumnText {
                            message: self.message,
                            column,
                            offset: start + err.valid_up_to(),
                        }
                    })?;
                    TupleColumn::Text(text)
                }
                b'b' => TupleColumn::Binary(self.sized("column value length", "column value")?),
                kind => {
                    return Err(ParseError::UnknownColumnKind {
                        message: self.message,
                        column,
                        kind,
                        offset,
                    });
                }
            };
            columns.push(value);
        }
        Ok(TupleData { columns })
    }

    fn finish(self) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ParseError::TrailingBytes {
                message: self.message,
                offset: self.offset,
                remaining: self.rest.len(),
            })
        }
    }

    fn truncated(&self, field: &'static str, needed: usize) -> ParseError {
        ParseError::Truncated {
            message: self.message,
            field,
            offset: self.offset,
            needed,
            available: self.rest.len(),
        }
    }

    fn unknown_tuple_kind(&self, expected: &'static str, kind: u8, offset: usize) -> ParseError {
        ParseError::UnknownTupleKind {
            message: self.message,
            expected,
            kind,
            offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a message byte by byte, big-endian, as Postgres writes it.
    struct Build(Vec<u8>);

    impl Build {
        fn message(tag: u8) -> Build {
            Build(vec![tag])
        }

        fn u8(mut self, value: u8) -> Build {
            self.0.push(value);
            self
        }

        fn u16(mut self, value: u16) -> Build {
            self.0.extend(value.to_be_bytes());
            self
        }

        fn u32(mut self, value: u32) -> Build {
            self.0.extend(value.to_be_bytes());
            self
        }

        fn i32(mut self, value: i32) -> Build {
            self.0.extend(value.to_be_bytes());
            self
        }

        fn u64(mut self, value: u64) -> Build {
            self.0.extend(value.to_be_bytes());
            self
        }

        fn i64(mut self, value: i64) -> Build {
            self.0.extend(value.to_be_bytes());
            self
        }

        fn raw(mut self, bytes: &[u8]) -> Build {
            self.0.extend_from_slice(bytes);
            self
        }

        /// A NUL-terminated string.
        fn string(self, text: &str) -> Build {
            self.raw(text.as_bytes()).u8(0)
        }

        /// An Int32 length and the bytes.
        fn sized(self, bytes: &[u8]) -> Build {
            let length = i32::try_from(bytes.len()).expect("test value fits an Int32 length");
            self.i32(length).raw(bytes)
        }

        /// TupleData: the column count, then each column.
        fn tuple(self, columns: &[TupleColumn<'_>]) -> Build {
            let count = u16::try_from(columns.len()).expect("test tuple fits an Int16 count");
            columns
                .iter()
                .fold(self.u16(count), |build, column| match column {
                    TupleColumn::Null => build.u8(b'n'),
                    TupleColumn::UnchangedToast => build.u8(b'u'),
                    TupleColumn::Text(text) => build.u8(b't').sized(text.as_bytes()),
                    TupleColumn::Binary(bytes) => build.u8(b'b').sized(bytes),
                })
        }

        fn bytes(self) -> Vec<u8> {
            self.0
        }
    }

    const LSN_A: u64 = 0x0000_0016_B374_D848;
    const LSN_B: u64 = 0x0000_0016_B374_D900;

    fn sample_tuple() -> Vec<TupleColumn<'static>> {
        vec![
            TupleColumn::Text("1"),
            TupleColumn::Null,
            TupleColumn::UnchangedToast,
            TupleColumn::Text("grüße, 世界 😀"),
            TupleColumn::Binary(&[0, 0xff, 0x10]),
            TupleColumn::Text(""),
        ]
    }

    fn key_tuple() -> Vec<TupleColumn<'static>> {
        vec![
            TupleColumn::Text("1"),
            TupleColumn::Null,
            TupleColumn::Null,
            TupleColumn::Null,
            TupleColumn::Null,
            TupleColumn::Null,
        ]
    }

    fn begin() -> Vec<u8> {
        Build::message(b'B')
            .u64(LSN_A)
            .i64(764_000_000_123_456)
            .u32(4_000_000_000)
            .bytes()
    }

    fn commit() -> Vec<u8> {
        Build::message(b'C')
            .u8(0)
            .u64(LSN_A)
            .u64(LSN_B)
            .i64(764_000_000_123_456)
            .bytes()
    }

    fn origin() -> Vec<u8> {
        Build::message(b'O').u64(LSN_A).string("pg_16390").bytes()
    }

    fn relation(replica_identity: u8) -> Vec<u8> {
        Build::message(b'R')
            .u32(16_384)
            .string("public")
            .string("accounts")
            .u8(replica_identity)
            .u16(3)
            .u8(1)
            .string("id")
            .u32(20)
            .i32(-1)
            .u8(0)
            .string("name")
            .u32(1043)
            .i32(68)
            .u8(0)
            .string("balance")
            .u32(1700)
            .i32(0x000C_0006)
            .bytes()
    }

    fn type_message() -> Vec<u8> {
        Build::message(b'Y')
            .u32(16_390)
            .string("public")
            .string("mood")
            .bytes()
    }

    fn insert() -> Vec<u8> {
        Build::message(b'I')
            .u32(16_384)
            .u8(b'N')
            .tuple(&sample_tuple())
            .bytes()
    }

    fn update(old: Option<u8>) -> Vec<u8> {
        let build = Build::message(b'U').u32(16_384);
        let build = match old {
            Some(marker @ b'K') => build.u8(marker).tuple(&key_tuple()),
            Some(marker) => build.u8(marker).tuple(&sample_tuple()),
            None => build,
        };
        build.u8(b'N').tuple(&sample_tuple()).bytes()
    }

    fn delete(marker: u8) -> Vec<u8> {
        let tuple = if marker == b'K' {
            key_tuple()
        } else {
            sample_tuple()
        };
        Build::message(b'D')
            .u32(16_384)
            .u8(marker)
            .tuple(&tuple)
            .bytes()
    }

    fn truncate(options: u8) -> Vec<u8> {
        Build::message(b'T')
            .u32(3)
            .u8(options)
            .u32(16_384)
            .u32(16_390)
            .u32(u32::MAX)
            .bytes()
    }

    fn logical_message(flags: u8) -> Vec<u8> {
        Build::message(b'M')
            .u8(flags)
            .u64(LSN_B)
            .string("walproof.ddl")
            .sized(b"ALTER TABLE accounts ADD COLUMN note text\0\xff")
            .bytes()
    }

    /// One valid message of every type and variant.
    fn every_valid_message() -> Vec<Vec<u8>> {
        let mut messages = vec![begin(), commit(), origin(), type_message(), insert()];
        messages.extend([b'd', b'n', b'f', b'i'].map(relation));
        messages.extend([None, Some(b'K'), Some(b'O')].map(update));
        messages.extend([b'K', b'O'].map(delete));
        messages.extend([0, 1, 2, 3].map(truncate));
        messages.extend([0, 1].map(logical_message));
        messages
    }

    #[test]
    fn begin_parses_final_lsn_commit_time_and_xid() {
        assert_eq!(
            parse_message(&begin()),
            Ok(Message::Begin {
                final_lsn: Lsn::new(LSN_A),
                commit_time: 764_000_000_123_456,
                xid: 4_000_000_000,
            })
        );
    }

    #[test]
    fn commit_parses_flags_both_lsns_and_commit_time() {
        assert_eq!(
            parse_message(&commit()),
            Ok(Message::Commit {
                flags: 0,
                commit_lsn: Lsn::new(LSN_A),
                end_lsn: Lsn::new(LSN_B),
                commit_time: 764_000_000_123_456,
            })
        );
    }

    #[test]
    fn origin_parses_commit_lsn_and_name() {
        assert_eq!(
            parse_message(&origin()),
            Ok(Message::Origin {
                commit_lsn: Lsn::new(LSN_A),
                name: "pg_16390",
            })
        );
    }

    #[test]
    fn relation_parses_names_identity_and_columns_in_order() {
        let expected = RelationMessage {
            id: 16_384,
            namespace: "public",
            name: "accounts",
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                RelationColumn {
                    key: true,
                    name: "id",
                    type_oid: 20,
                    type_modifier: -1,
                },
                RelationColumn {
                    key: false,
                    name: "name",
                    type_oid: 1043,
                    type_modifier: 68,
                },
                RelationColumn {
                    key: false,
                    name: "balance",
                    type_oid: 1700,
                    type_modifier: 0x000C_0006,
                },
            ],
        };
        assert_eq!(
            parse_message(&relation(b'd')),
            Ok(Message::Relation(expected))
        );
    }

    #[test]
    fn relation_maps_each_replica_identity_byte_to_its_kind() {
        for (byte, identity) in [
            (b'd', ReplicaIdentity::Default),
            (b'n', ReplicaIdentity::Nothing),
            (b'f', ReplicaIdentity::Full),
            (b'i', ReplicaIdentity::Index),
        ] {
            let data = relation(byte);
            let Ok(Message::Relation(parsed)) = parse_message(&data) else {
                panic!("relation with replica identity {byte} did not parse");
            };
            assert_eq!(parsed.replica_identity, identity);
        }
    }

    #[test]
    fn relation_with_unknown_replica_identity_is_rejected_naming_it() {
        let err = parse_message(&relation(b'x')).unwrap_err();
        assert_eq!(
            err,
            ParseError::UnknownReplicaIdentity {
                relation: 16_384,
                value: b'x',
            }
        );
        assert_eq!(
            err.to_string(),
            "Relation message: relation 16384 has unknown replica identity 'x' (0x78) \
             (expected 'd', 'n', 'f' or 'i')"
        );
    }

    #[test]
    fn relation_in_pg_catalog_has_an_empty_namespace() {
        let data = Build::message(b'R')
            .u32(1)
            .string("")
            .string("t")
            .u8(b'n')
            .u16(0)
            .bytes();
        let Ok(Message::Relation(parsed)) = parse_message(&data) else {
            panic!("relation did not parse");
        };
        assert_eq!((parsed.namespace, parsed.name), ("", "t"));
        assert!(parsed.columns.is_empty());
    }

    #[test]
    fn type_parses_id_namespace_and_name() {
        assert_eq!(
            parse_message(&type_message()),
            Ok(Message::Type {
                id: 16_390,
                namespace: "public",
                name: "mood",
            })
        );
    }

    #[test]
    fn insert_parses_null_unchanged_text_and_binary_columns() {
        assert_eq!(
            parse_message(&insert()),
            Ok(Message::Insert {
                relation: 16_384,
                new: TupleData {
                    columns: sample_tuple(),
                },
            })
        );
    }

    #[test]
    fn insert_of_a_row_without_columns_parses() {
        let data = Build::message(b'I').u32(7).u8(b'N').tuple(&[]).bytes();
        assert_eq!(
            parse_message(&data),
            Ok(Message::Insert {
                relation: 7,
                new: TupleData { columns: vec![] },
            })
        );
    }

    #[test]
    fn insert_without_new_tuple_marker_is_rejected() {
        let data = Build::message(b'I').u32(7).u8(b'K').tuple(&[]).bytes();
        assert_eq!(
            parse_message(&data),
            Err(ParseError::UnknownTupleKind {
                message: "Insert",
                expected: "'N'",
                kind: b'K',
                offset: 5,
            })
        );
    }

    #[test]
    fn update_without_old_tuple_parses_only_the_new_tuple() {
        assert_eq!(
            parse_message(&update(None)),
            Ok(Message::Update {
                relation: 16_384,
                old: None,
                new: TupleData {
                    columns: sample_tuple(),
                },
            })
        );
    }

    #[test]
    fn update_with_key_old_tuple_parses_both_tuples() {
        assert_eq!(
            parse_message(&update(Some(b'K'))),
            Ok(Message::Update {
                relation: 16_384,
                old: Some(OldTuple::Key(TupleData {
                    columns: key_tuple(),
                })),
                new: TupleData {
                    columns: sample_tuple(),
                },
            })
        );
    }

    #[test]
    fn update_with_full_old_tuple_parses_both_tuples() {
        let data = update(Some(b'O'));
        let Ok(Message::Update { old: Some(old), .. }) = parse_message(&data) else {
            panic!("update with full old tuple did not parse");
        };
        assert_eq!(
            old,
            OldTuple::Full(TupleData {
                columns: sample_tuple(),
            })
        );
        assert_eq!(old.tuple().columns, sample_tuple());
    }

    #[test]
    fn update_with_old_tuple_but_no_new_tuple_marker_is_rejected() {
        let data = Build::message(b'U')
            .u32(1)
            .u8(b'K')
            .tuple(&[TupleColumn::Text("1")])
            .u8(b'K')
            .tuple(&[TupleColumn::Text("1")])
            .bytes();
        assert_eq!(
            parse_message(&data),
            Err(ParseError::UnknownTupleKind {
                message: "Update",
                expected: "'N'",
                kind: b'K',
                // tag, relation, 'K', count, 't', length, "1": the marker is at 14.
                offset: 14,
            })
        );
    }

    #[test]
    fn update_with_unknown_tuple_marker_is_rejected() {
        let data = Build::message(b'U').u32(1).u8(b'X').tuple(&[]).bytes();
        let err = parse_message(&data).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Update message: expected tuple marker 'K', 'O' or 'N' at byte 5, found 'X' (0x58)"
        );
    }

    #[test]
    fn delete_with_key_old_tuple_parses() {
        assert_eq!(
            parse_message(&delete(b'K')),
            Ok(Message::Delete {
                relation: 16_384,
                old: OldTuple::Key(TupleData {
                    columns: key_tuple(),
                }),
            })
        );
    }

    #[test]
    fn delete_with_full_old_tuple_parses() {
        assert_eq!(
            parse_message(&delete(b'O')),
            Ok(Message::Delete {
                relation: 16_384,
                old: OldTuple::Full(TupleData {
                    columns: sample_tuple(),
                }),
            })
        );
    }

    #[test]
    fn delete_with_new_tuple_marker_instead_of_old_is_rejected() {
        assert!(matches!(
            parse_message(&delete(b'N')),
            Err(ParseError::UnknownTupleKind {
                message: "Delete",
                expected: "'K' or 'O'",
                kind: b'N',
                offset: 5,
            })
        ));
    }

    #[test]
    fn truncate_parses_relations_and_each_option_combination() {
        for (options, cascade, restart_identity) in [
            (0, false, false),
            (1, true, false),
            (2, false, true),
            (3, true, true),
        ] {
            assert_eq!(
                parse_message(&truncate(options)),
                Ok(Message::Truncate {
                    cascade,
                    restart_identity,
                    relations: vec![16_384, 16_390, u32::MAX],
                }),
                "options {options}"
            );
        }
    }

    #[test]
    fn truncate_with_undefined_option_bits_is_rejected() {
        let err = parse_message(&truncate(4)).unwrap_err();
        assert_eq!(
            err,
            ParseError::UnknownFlags {
                message: "Truncate",
                field: "option bits",
                flags: 4,
                known: 3,
                offset: 5,
            }
        );
        assert_eq!(
            err.to_string(),
            "Truncate message: option bits 0x04 at byte 5 sets bits outside 0x03"
        );
    }

    #[test]
    fn truncate_claiming_billions_of_relations_fails_on_the_missing_bytes() {
        let data = Build::message(b'T').u32(u32::MAX).u8(0).u32(1).bytes();
        assert_eq!(
            parse_message(&data),
            Err(ParseError::Truncated {
                message: "Truncate",
                field: "relation id",
                offset: 10,
                needed: 4,
                available: 0,
            })
        );
    }

    #[test]
    fn transactional_message_parses_lsn_prefix_and_content() {
        assert_eq!(
            parse_message(&logical_message(1)),
            Ok(Message::Message {
                transactional: true,
                lsn: Lsn::new(LSN_B),
                prefix: "walproof.ddl",
                content: b"ALTER TABLE accounts ADD COLUMN note text\0\xff",
            })
        );
    }

    #[test]
    fn non_transactional_message_parses() {
        let Ok(Message::Message { transactional, .. }) = parse_message(&logical_message(0)) else {
            panic!("message did not parse");
        };
        assert!(!transactional);
    }

    #[test]
    fn message_with_empty_prefix_and_content_parses() {
        let data = Build::message(b'M')
            .u8(0)
            .u64(0)
            .string("")
            .sized(b"")
            .bytes();
        assert_eq!(
            parse_message(&data),
            Ok(Message::Message {
                transactional: false,
                lsn: Lsn::ZERO,
                prefix: "",
                content: b"",
            })
        );
    }

    #[test]
    fn message_with_undefined_flag_bits_is_rejected() {
        assert!(matches!(
            parse_message(&logical_message(0x81)),
            Err(ParseError::UnknownFlags {
                message: "Message",
                flags: 0x81,
                ..
            })
        ));
    }

    #[test]
    fn every_valid_message_cut_short_at_any_byte_is_an_error() {
        for message in every_valid_message() {
            assert!(parse_message(&message).is_ok(), "{message:?}");
            for end in 0..message.len() {
                let prefix = message.get(..end).expect("end is within the message");
                assert!(
                    parse_message(prefix).is_err(),
                    "{end} of {} bytes parsed: {message:?}",
                    message.len()
                );
            }
        }
    }

    #[test]
    fn cutting_a_message_short_reports_the_field_and_the_missing_bytes() {
        let data = insert();
        // Cut inside the Int32 length of column 0: tag, relation, 'N', count, kind = 9 bytes.
        let err = parse_message(data.get(..11).expect("insert is longer")).unwrap_err();
        assert_eq!(
            err,
            ParseError::Truncated {
                message: "Insert",
                field: "column value length",
                offset: 9,
                needed: 4,
                available: 2,
            }
        );
        assert_eq!(
            err.to_string(),
            "Insert message is truncated: column value length at byte 9 needs 4 bytes, only 2 left"
        );
    }

    #[test]
    fn every_valid_message_with_a_byte_appended_reports_trailing_bytes() {
        for mut message in every_valid_message() {
            let end = message.len();
            message.push(0);
            assert!(
                matches!(
                    parse_message(&message),
                    Err(ParseError::TrailingBytes { offset, remaining: 1, .. }) if offset == end
                ),
                "{message:?}"
            );
        }
    }

    #[test]
    fn empty_payload_is_rejected() {
        assert_eq!(parse_message(&[]), Err(ParseError::Empty));
    }

    #[test]
    fn unknown_message_types_are_rejected_naming_the_tag() {
        // Streaming (protocol version 2+) and two-phase messages are not version 1.
        for tag in [
            b'S', b'E', b'c', b'A', b'b', b'P', b'K', b'r', b'p', b'x', 0, 0xff,
        ] {
            assert_eq!(
                parse_message(&[tag, 0, 0, 0, 0]),
                Err(ParseError::UnknownMessageType { tag })
            );
        }
        assert_eq!(
            ParseError::UnknownMessageType { tag: 0 }.to_string(),
            "unknown pgoutput message type 0x00: protocol version 1 has B, C, O, R, Y, I, U, D, \
             T and M"
        );
    }

    #[test]
    fn unknown_column_kind_is_rejected_naming_the_column_and_its_offset() {
        let data = Build::message(b'I')
            .u32(1)
            .u8(b'N')
            .u16(2)
            .u8(b'n')
            .u8(b'x')
            .bytes();
        let err = parse_message(&data).unwrap_err();
        assert_eq!(
            err,
            ParseError::UnknownColumnKind {
                message: "Insert",
                column: 1,
                kind: b'x',
                offset: 9,
            }
        );
        assert_eq!(
            err.to_string(),
            "Insert message: column 1 at byte 9 has unknown kind 'x' (0x78) \
             (expected 'n', 'u', 't' or 'b')"
        );
    }

    #[test]
    fn invalid_utf8_in_a_text_column_is_rejected_naming_the_column() {
        let data = Build::message(b'I')
            .u32(1)
            .u8(b'N')
            .u16(2)
            .u8(b'n')
            .u8(b't')
            .sized(b"ab\xc3(")
            .bytes();
        assert_eq!(
            parse_message(&data),
            Err(ParseError::InvalidColumnText {
                message: "Insert",
                column: 1,
                // kind at 9, length at 10..14, "ab" at 14..16.
                offset: 16,
            })
        );
    }

    #[test]
    fn invalid_utf8_in_a_binary_column_is_just_bytes() {
        let data = Build::message(b'I')
            .u32(1)
            .u8(b'N')
            .tuple(&[TupleColumn::Binary(b"\xc3(")])
            .bytes();
        assert!(parse_message(&data).is_ok());
    }

    #[test]
    fn invalid_utf8_in_a_relation_name_is_rejected() {
        let data = Build::message(b'R')
            .u32(1)
            .string("public")
            .raw(b"t\xff\0")
            .u8(b'd')
            .u16(0)
            .bytes();
        assert_eq!(
            parse_message(&data),
            Err(ParseError::InvalidUtf8 {
                message: "Relation",
                field: "relation name",
                offset: 13,
            })
        );
    }

    #[test]
    fn string_without_terminator_is_rejected() {
        let data = Build::message(b'Y').u32(1).raw(b"public").bytes();
        assert_eq!(
            parse_message(&data),
            Err(ParseError::UnterminatedString {
                message: "Type",
                field: "type namespace",
                offset: 5,
            })
        );
    }

    #[test]
    fn negative_value_length_is_rejected() {
        let data = Build::message(b'I')
            .u32(1)
            .u8(b'N')
            .u16(1)
            .u8(b'b')
            .i32(-1)
            .bytes();
        let err = parse_message(&data).unwrap_err();
        assert_eq!(
            err,
            ParseError::NegativeLength {
                message: "Insert",
                field: "column value length",
                offset: 9,
                length: -1,
            }
        );
        assert_eq!(
            err.to_string(),
            "Insert message: column value length at byte 9 is negative (-1)"
        );
    }

    #[test]
    fn huge_counts_with_few_bytes_fail_on_the_missing_bytes() {
        let tuple = Build::message(b'I').u32(1).u8(b'N').u16(u16::MAX).bytes();
        assert!(matches!(
            parse_message(&tuple),
            Err(ParseError::Truncated {
                field: "column kind",
                ..
            })
        ));
        let relation = Build::message(b'R')
            .u32(1)
            .string("s")
            .string("t")
            .u8(b'd')
            .u16(u16::MAX)
            .bytes();
        assert!(matches!(
            parse_message(&relation),
            Err(ParseError::Truncated {
                field: "column flags",
                ..
            })
        ));
        let content = Build::message(b'M')
            .u8(1)
            .u64(0)
            .string("p")
            .i32(i32::MAX)
            .bytes();
        assert!(matches!(
            parse_message(&content),
            Err(ParseError::Truncated {
                field: "content",
                needed: 2_147_483_647,
                available: 0,
                ..
            })
        ));
    }

    #[test]
    fn pg_timestamps_convert_to_unix_microseconds_and_saturate() {
        assert_eq!(pg_time_to_unix_us(0), 946_684_800_000_000);
        // 2024-03-17 12:00:00 UTC.
        assert_eq!(
            pg_time_to_unix_us(1_710_676_800_000_000 - POSTGRES_EPOCH_OFFSET_US),
            1_710_676_800_000_000
        );
        assert_eq!(pg_time_to_unix_us(i64::MAX), i64::MAX);
        assert_eq!(
            pg_time_to_unix_us(i64::MIN),
            i64::MIN + POSTGRES_EPOCH_OFFSET_US
        );
    }
}
