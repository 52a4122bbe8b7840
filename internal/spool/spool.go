// Package spool is a small local, fsync'd, append-only queue. Carrier writes
// incoming callbacks and publishes here when its database cannot be written,
// acknowledges them once they are durable on local disk, and later replays them
// into the database in order, without loss.
//
// A spool directory holds two kinds of file:
//
//	seg-<16 hex digits>.log  the active segment: records back to back
//	ack                      two ack slots, at offsets 0 and 4096
//
// A record is an 8-byte header {body length uint32, CRC-32C of body uint32}
// followed by the body {seq uint64, unix nanos int64, kind length uint8, kind,
// payload}, all little-endian. Append writes a record and fsyncs the segment
// before it returns; appends that arrive while an fsync is running share the
// next one (group commit). On Open, the first record that is short, has an
// impossible length or fails its CRC marks a torn or corrupt tail: it and
// everything after it is truncated away.
//
// An ack slot is {magic, version, segment, offset, acked seq, CRC-32C}. Each
// acknowledgement overwrites the older slot in place and fsyncs the file (one
// fsync per ack, no rename). If a crash tears that write, the other slot
// still holds the previous acknowledgement, so at worst the last acknowledged
// record is replayed again (at-least-once). Once every record is acknowledged,
// a fresh empty segment is created, the ack is pointed at it and the old
// segment is removed, so the spool does not grow forever.
//
// One process at a time may open a directory (flock on the ack file).
package spool

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MaxPayload is the largest payload Append accepts, in bytes.
const MaxPayload = 4 << 20

// MaxKind is the longest kind Append accepts, in bytes.
const MaxKind = 255

// ErrClosed is returned by operations on a closed Spool.
var ErrClosed = errors.New("spool: closed")

// ErrTooLarge is returned (wrapped) by Append when the kind or payload exceeds
// MaxKind or MaxPayload.
var ErrTooLarge = errors.New("spool: record too large")

const (
	headerSize = 8         // body length + CRC
	bodyFixed  = 8 + 8 + 1 // seq + unix nanos + kind length
	maxBody    = bodyFixed + MaxKind + MaxPayload
	ackName    = "ack"
	ackMagic   = "CSA1"
	ackSize    = 4 + 8 + 8 + 8 + 8 + 4 // magic, version, segment, offset, acked, CRC
	ackSlot1   = 4096                  // second slot on its own page/sector
	segPrefix  = "seg-"
	segSuffix  = ".log"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks data that is not a whole, valid record.
var errTorn = errors.New("torn or corrupt record")

// Record is one spooled item.
type Record struct {
	Seq     uint64    // position in the spool, from 1, increasing by one
	Kind    string    // caller-defined type of the payload
	Payload []byte    // the bytes passed to Append
	At      time.Time // when Append was called
}

// ackState is the content of one ack slot: records of segment gen before
// byte off, up to and including seq acked, are acknowledged.
type ackState struct {
	version uint64 // increases on every write; the valid slot with the higher one wins
	gen     uint64 // active segment
	off     int64  // first unacknowledged byte in the segment
	acked   uint64 // last acknowledged seq
}

// Spool is a durable local queue of records. Its methods are safe for
// concurrent use; at most one Replay runs at a time.
type Spool struct {
	dir     string
	ackFile *os.File // also holds the directory's flock

	replayMu sync.Mutex // serialises Replay
	ackMu    sync.Mutex // serialises ack writes with Close; taken before mu

	mu         sync.Mutex
	cond       *sync.Cond // signalled when an fsync finishes
	closed     bool
	err        error // sticky: a failed fsync or repair makes the segment unusable
	seg        *os.File
	ack        ackState // the durable acknowledgement
	end        int64    // bytes written to seg
	durable    int64    // bytes of seg known to be fsync'd
	nextSeq    uint64
	durableSeq uint64 // last seq known to be fsync'd
	syncing    bool   // an fsync of seg is running without mu
}

// Open opens the spool in dir, creating dir (0700) and its files (0600) if
// needed, and recovers from a crash: a torn or corrupt tail record (checked by
// length and CRC-32C) is dropped and truncated away; records acknowledged
// before the crash are not returned again, except that the last
// acknowledgement may be repeated if it was being written when the crash
// happened (at-least-once). Only one Spool per directory may be open at a
// time, across processes.
func Open(dir string) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create dir %s: %w", dir, err)
	}
	af, err := os.OpenFile(filepath.Join(dir, ackName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: open ack file: %w", err)
	}
	if err := syscall.Flock(int(af.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		af.Close()
		return nil, fmt.Errorf("spool: %s is in use by another spool: %w", dir, err)
	}
	s := &Spool{dir: dir, ackFile: af}
	s.cond = sync.NewCond(&s.mu)
	if err := s.recover(); err != nil {
		if s.seg != nil {
			s.seg.Close()
		}
		af.Close()
		return nil, err
	}
	// Everything already acknowledged: start afresh. Not fatal if it fails;
	// the next Replay tries again.
	_ = s.maybeRotate()
	return s, nil
}

// recover loads the ack, removes stale segments, opens the active one and
// truncates any torn tail.
func (s *Spool) recover() error {
	gens, err := s.listSegments()
	if err != nil {
		return err
	}
	st, ok, err := s.readAck()
	if err != nil {
		return err
	}
	if !ok {
		// A new spool, or a crash while the ack file was first written
		// (it is made durable before any segment exists).
		if len(gens) > 0 {
			return fmt.Errorf("spool: ack file in %s is corrupt but segments exist", s.dir)
		}
		st = ackState{version: 1, gen: 1}
		if err := s.writeAck(st); err != nil {
			return err
		}
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
	s.ack = st

	for _, g := range gens {
		path := s.segPath(g)
		if g > st.gen {
			// Created by a rotation that crashed before the ack pointed at
			// it, so nothing can have been appended to it.
			if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
				return fmt.Errorf("spool: segment %s is newer than the ack (segment %d) and not empty", path, st.gen)
			}
		}
		if g != st.gen {
			// Older segments were fully acknowledged before the rotation.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("spool: remove stale segment: %w", err)
			}
		}
	}

	f, err := os.OpenFile(s.segPath(st.gen), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("spool: open segment: %w", err)
	}
	s.seg = f
	if err := syncDir(s.dir); err != nil {
		return err
	}
	return s.scan()
}

// scan validates the unacknowledged records of the active segment and cuts
// off a torn or corrupt tail.
func (s *Spool) scan() error {
	fi, err := s.seg.Stat()
	if err != nil {
		return fmt.Errorf("spool: stat segment: %w", err)
	}
	size := fi.Size()
	if s.ack.off > size {
		return fmt.Errorf("spool: ack offset %d is beyond the end of %s (%d bytes)", s.ack.off, s.seg.Name(), size)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.seg, s.ack.off, size-s.ack.off), 1<<16)
	off, last := s.ack.off, s.ack.acked
	for {
		rec, n, err := readRecord(r)
		if errors.Is(err, io.EOF) || errors.Is(err, errTorn) {
			break
		}
		if err != nil {
			return fmt.Errorf("spool: read %s at offset %d: %w", s.seg.Name(), off, err)
		}
		if rec.Seq != last+1 {
			return fmt.Errorf("spool: %s at offset %d: record has seq %d, want %d", s.seg.Name(), off, rec.Seq, last+1)
		}
		off += n
		last = rec.Seq
	}
	if off < size {
		if err := s.seg.Truncate(off); err != nil {
			return fmt.Errorf("spool: truncate torn tail of %s at %d: %w", s.seg.Name(), off, err)
		}
		if err := s.seg.Sync(); err != nil {
			return fmt.Errorf("spool: fsync %s: %w", s.seg.Name(), err)
		}
	}
	s.end, s.durable = off, off
	s.durableSeq, s.nextSeq = last, last+1
	return nil
}

// Append writes the record and fsyncs it before returning its seq. Concurrent
// appends may share one fsync. The payload is copied.
func (s *Spool) Append(kind string, payload []byte) (uint64, error) {
	if len(kind) > MaxKind {
		return 0, fmt.Errorf("spool: append: kind is %d bytes, limit %d: %w", len(kind), MaxKind, ErrTooLarge)
	}
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("spool: append: payload is %d bytes, limit %d: %w", len(payload), MaxPayload, ErrTooLarge)
	}
	buf := make([]byte, headerSize+bodyFixed+len(kind)+len(payload))
	body := buf[headerSize:]
	binary.LittleEndian.PutUint64(body[8:], uint64(time.Now().UnixNano()))
	body[16] = byte(len(kind))
	copy(body[bodyFixed:], kind)
	copy(body[bodyFixed+len(kind):], payload)
	binary.LittleEndian.PutUint32(buf[0:], uint32(len(body)))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if s.err != nil {
		return 0, fmt.Errorf("spool: append: %w", s.err)
	}
	seq := s.nextSeq
	binary.LittleEndian.PutUint64(body[0:], seq)
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(body, crcTable))
	if _, err := s.seg.WriteAt(buf, s.end); err != nil {
		// Do not leave a partial record in front of the next one.
		if terr := s.seg.Truncate(s.end); terr != nil {
			s.err = fmt.Errorf("truncate %s after failed write: %w", s.seg.Name(), terr)
		}
		return 0, fmt.Errorf("spool: append: write %s: %w", s.seg.Name(), err)
	}
	s.end += int64(len(buf))
	s.nextSeq++
	target := s.end
	for s.durable < target {
		switch {
		case s.err != nil:
			return 0, fmt.Errorf("spool: append seq %d: %w", seq, s.err)
		case s.syncing:
			s.cond.Wait()
		case s.closed:
			return 0, ErrClosed
		default:
			s.syncLocked()
		}
	}
	return seq, nil
}

// syncLocked fsyncs the segment without holding mu, then publishes what it
// made durable. Called with mu held and no fsync running.
func (s *Spool) syncLocked() {
	s.syncing = true
	f, upto, seq := s.seg, s.end, s.nextSeq-1
	s.mu.Unlock()
	err := f.Sync()
	s.mu.Lock()
	s.syncing = false
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages;
		// retrying could report success for lost data.
		if s.err == nil {
			s.err = fmt.Errorf("fsync %s: %w", f.Name(), err)
		}
	} else if upto > s.durable {
		s.durable, s.durableSeq = upto, seq
	}
	s.cond.Broadcast()
}

// Len is the number of records appended (durably) and not yet acknowledged.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.durableSeq - s.ack.acked)
}

// Replay calls fn for each unacknowledged record in order and returns how
// many were acknowledged. A record is acknowledged, durably, only after fn
// returns nil for it. At the first error from fn, or when ctx is done, Replay
// stops, keeping that record and the rest for the next call, and returns the
// error (wrapped). Records appended during a Replay are replayed by the same
// call or the next. When everything is acknowledged, Replay starts a fresh
// segment.
func (s *Spool) Replay(ctx context.Context, fn func(Record) error) (int, error) {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("spool: replay: %w", err)
		}
		rec, next, ok, err := s.next()
		if err != nil {
			return n, err
		}
		if !ok {
			return n, s.maybeRotate()
		}
		if err := fn(rec); err != nil {
			return n, fmt.Errorf("spool: replay seq %d: %w", rec.Seq, err)
		}
		if err := s.acknowledge(rec.Seq, next); err != nil {
			return n, err
		}
		n++
	}
}

// next reads the first unacknowledged durable record and the offset after it;
// ok is false when there is none.
func (s *Spool) next() (rec Record, next int64, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Record{}, 0, false, ErrClosed
	}
	off := s.ack.off
	if off >= s.durable {
		return Record{}, 0, false, nil
	}
	rec, n, err := readRecord(io.NewSectionReader(s.seg, off, s.durable-off))
	if err != nil {
		return Record{}, 0, false, fmt.Errorf("spool: replay: read %s at offset %d: %w", s.seg.Name(), off, err)
	}
	if rec.Seq != s.ack.acked+1 {
		return Record{}, 0, false, fmt.Errorf("spool: replay: %s at offset %d: record has seq %d, want %d", s.seg.Name(), off, rec.Seq, s.ack.acked+1)
	}
	return rec, off + n, true, nil
}

// acknowledge durably records that everything up to seq, ending at byte next
// of the segment, is done. Only Replay calls it, so s.ack changes only here
// and in rotate.
func (s *Spool) acknowledge(seq uint64, next int64) error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	closed, st := s.closed, s.ack
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	st.version++
	st.off, st.acked = next, seq
	if err := s.writeAck(st); err != nil {
		return err
	}
	s.mu.Lock()
	s.ack = st
	s.mu.Unlock()
	return nil
}

// maybeRotate starts a fresh segment if every record of a non-empty segment
// is acknowledged.
func (s *Spool) maybeRotate() error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.syncing {
		s.cond.Wait()
	}
	if s.closed || s.err != nil || s.ack.off == 0 || s.ack.off != s.end {
		return nil
	}
	return s.rotate()
}

// rotate creates segment gen+1, points the ack at it and removes the old
// segment. Called with ackMu and mu held and no fsync running. Crash safety:
// until the ack is written, Open uses the old segment and removes the new
// empty one; after it, Open removes the old one.
func (s *Spool) rotate() error {
	st := s.ack
	st.version++
	st.gen++
	st.off = 0
	path := s.segPath(st.gen)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: start fresh segment: %w", err)
	}
	err = f.Sync()
	if err == nil {
		err = syncDir(s.dir)
	}
	if err == nil {
		err = s.writeAck(st)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("spool: start fresh segment: %w", err)
	}
	old := s.seg
	s.seg, s.ack, s.end, s.durable = f, st, 0, 0
	// Best effort: Open removes a leftover old segment.
	old.Close()
	os.Remove(old.Name())
	return nil
}

// Close flushes pending appends, closes the files and releases the directory.
// Closing twice is a no-op.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for s.syncing {
		s.cond.Wait()
	}
	if s.durable < s.end && s.err == nil {
		s.syncLocked() // appends still waiting for their fsync get it
	}
	var errs []error
	if s.err != nil {
		errs = append(errs, s.err)
	}
	if err := s.seg.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close segment: %w", err))
	}
	s.cond.Broadcast()
	s.mu.Unlock()

	s.ackMu.Lock() // wait for an ack write in progress
	if err := s.ackFile.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close ack file: %w", err))
	}
	s.ackMu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("spool: close %s: %w", s.dir, err)
	}
	return nil
}

// readRecord reads one record from r and returns it with its size in bytes.
// It returns io.EOF at a clean end, an error wrapping errTorn for a short,
// impossible or CRC-failing record, and other errors as they come.
func readRecord(r io.Reader) (Record, int64, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Record{}, 0, fmt.Errorf("short header: %w", errTorn)
		}
		return Record{}, 0, err // io.EOF: clean end
	}
	n := binary.LittleEndian.Uint32(h[0:])
	if n < bodyFixed || n > maxBody {
		return Record{}, 0, fmt.Errorf("body length %d: %w", n, errTorn)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Record{}, 0, fmt.Errorf("short body: %w", errTorn)
		}
		return Record{}, 0, err
	}
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(h[4:]) {
		return Record{}, 0, fmt.Errorf("CRC mismatch: %w", errTorn)
	}
	kl := int(body[16])
	if bodyFixed+kl > len(body) {
		return Record{}, 0, fmt.Errorf("kind length %d: %w", kl, errTorn)
	}
	return Record{
		Seq:     binary.LittleEndian.Uint64(body[0:]),
		At:      time.Unix(0, int64(binary.LittleEndian.Uint64(body[8:]))),
		Kind:    string(body[bodyFixed : bodyFixed+kl]),
		Payload: body[bodyFixed+kl:],
	}, int64(headerSize) + int64(n), nil
}

// readAck returns the valid ack slot with the higher version; ok is false if
// neither slot is valid (a new or never completed ack file).
func (s *Spool) readAck() (ackState, bool, error) {
	buf := make([]byte, ackSlot1+ackSize)
	n, err := s.ackFile.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return ackState{}, false, fmt.Errorf("spool: read ack file: %w", err)
	}
	buf = buf[:n]
	var best ackState
	found := false
	for _, off := range []int{0, ackSlot1} {
		if len(buf) < off+ackSize {
			continue
		}
		if st, ok := decodeAck(buf[off : off+ackSize]); ok && (!found || st.version > best.version) {
			best, found = st, true
		}
	}
	return best, found, nil
}

// writeAck overwrites the slot for st.version (the older one) and fsyncs.
func (s *Spool) writeAck(st ackState) error {
	b := make([]byte, ackSize)
	copy(b, ackMagic)
	binary.LittleEndian.PutUint64(b[4:], st.version)
	binary.LittleEndian.PutUint64(b[12:], st.gen)
	binary.LittleEndian.PutUint64(b[20:], uint64(st.off))
	binary.LittleEndian.PutUint64(b[28:], st.acked)
	binary.LittleEndian.PutUint32(b[36:], crc32.Checksum(b[:36], crcTable))
	off := int64(0)
	if st.version%2 == 1 {
		off = ackSlot1
	}
	if _, err := s.ackFile.WriteAt(b, off); err != nil {
		return fmt.Errorf("spool: write ack: %w", err)
	}
	if err := s.ackFile.Sync(); err != nil {
		return fmt.Errorf("spool: fsync ack: %w", err)
	}
	return nil
}

func decodeAck(b []byte) (ackState, bool) {
	if string(b[:4]) != ackMagic || crc32.Checksum(b[:36], crcTable) != binary.LittleEndian.Uint32(b[36:]) {
		return ackState{}, false
	}
	return ackState{
		version: binary.LittleEndian.Uint64(b[4:]),
		gen:     binary.LittleEndian.Uint64(b[12:]),
		off:     int64(binary.LittleEndian.Uint64(b[20:])),
		acked:   binary.LittleEndian.Uint64(b[28:]),
	}, true
}

func (s *Spool) segPath(gen uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%s%016x%s", segPrefix, gen, segSuffix))
}

// listSegments returns the generations of the segment files in the directory.
func (s *Spool) listSegments() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spool: list %s: %w", s.dir, err)
	}
	var gens []uint64
	for _, e := range entries {
		hex, ok := strings.CutPrefix(e.Name(), segPrefix)
		if !ok {
			continue
		}
		if hex, ok = strings.CutSuffix(hex, segSuffix); !ok || len(hex) != 16 {
			continue
		}
		if g, err := strconv.ParseUint(hex, 16, 64); err == nil {
			gens = append(gens, g)
		}
	}
	return gens, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: open dir for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: fsync dir %s: %w", dir, err)
	}
	return nil
}
