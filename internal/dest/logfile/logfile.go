// Package logfile is the audit-trail destination: every delivery appends one
// JSON line to a file inside a directory the operator configures.
//
// A subscription names only a file (settings {"file": "audit.jsonl"}); the
// directory is the Sender's, so the API can never make Carrier write anywhere
// else. Each project has its own directory below it, <Dir>/<project id>/, so
// projects that name the same file write to different files: one project can
// never append to another's audit trail. Names are 1–128 characters of [A-Za-z0-9._-], not starting with a dot
// (so never "." or ".."), and the file is opened through an os.Root on the
// directory, which refuses anything that would leave it.
//
// Durability: a line is written with a single write(2) on a file opened with
// O_APPEND, and Send reports Delivered only after fsync has returned. Sends
// to one file share one open handle; writes are serialised by its mutex, so
// lines never interleave, and concurrent sends share fsyncs (group commit).
// Delivery is at least once: an attempt whose fsync failed, or a process
// killed between write and the record of the attempt, is retried and its line
// may then appear twice (delivery_id tells the copies apart).
//
// Torn lines: a crash in the middle of a write can leave the file ending in a
// partial line without its newline. When a file is opened, such a torn tail
// is repaired by truncating the file back to the end of its last complete
// line. A torn line was never reported delivered (its write had not
// returned), so nothing acknowledged is lost, and every line of the file is
// always a complete JSON document. The same truncation undoes a short write
// (disk full in the middle of a line) while the file is open. The repair
// assumes one Carrier process appends to a directory at a time.
package logfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"carrier/internal/dest"
	"carrier/internal/dispatch"
	"carrier/internal/store"
)

// TimeFormat is the format of the "time" field: RFC 3339, milliseconds, UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// MaxNameLength is the longest file name a subscription may use.
const MaxNameLength = 128

// FileMode and DirMode are the permissions of files and of the directory
// that Carrier creates.
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// Config is the settings of a log destination.
type Config struct {
	// File is the name of the file, inside the Sender's directory, that
	// deliveries are appended to.
	File string `json:"file"`
}

// ParseConfig reads and validates a log destination's settings. Unknown
// settings are refused by name. Errors are *dest.FieldError.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	fields, err := objectFields(raw)
	if err != nil {
		return c, err
	}
	for name, v := range fields {
		switch name {
		case "file":
			if err := json.Unmarshal(v, &c.File); err != nil {
				return c, &dest.FieldError{Field: "file", Message: "must be a string"}
			}
		default:
			return c, &dest.FieldError{Field: name, Message: "is not a setting of log destinations (known: file)"}
		}
	}
	if err := CheckName(c.File); err != nil {
		return c, &dest.FieldError{Field: "file", Message: err.Error()}
	}
	return c, nil
}

// CheckName reports whether name may be used as a log file name: 1 to
// MaxNameLength characters of [A-Za-z0-9._-], not starting with a dot and
// without "..". Path separators are therefore never accepted.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("is required: the name of a file in the log directory, such as \"audit.jsonl\"")
	case len(name) > MaxNameLength:
		return fmt.Errorf("must be at most %d characters", MaxNameLength)
	case name[0] == '.':
		return errors.New("must not start with a dot")
	case bytes.Contains([]byte(name), []byte("..")):
		return errors.New("must not contain \"..\"")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			if c == '/' || c == '\\' {
				return errors.New("must be a file name, not a path: it may not contain / or \\")
			}
			return errors.New("may contain only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// objectFields splits a JSON object into its members; empty input counts as
// an empty object.
func objectFields(raw json.RawMessage) (map[string]json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return fields, nil
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, &dest.FieldError{Field: "destination", Message: "must be a JSON object"}
	}
	return fields, nil
}

// Redact returns the settings as the API shows them. A log destination holds
// no secrets, so they are returned as they are.
func Redact(raw json.RawMessage) json.RawMessage {
	return append(json.RawMessage(nil), raw...)
}

// Line is one line of a log file.
type Line struct {
	DeliveryID     string            `json:"delivery_id"`
	EventID        string            `json:"event_id"`
	Type           string            `json:"type"`
	Subject        string            `json:"subject"`
	Time           string            `json:"time"` // when the event was accepted (TimeFormat)
	ProjectID      string            `json:"project_id"`
	SubscriptionID string            `json:"subscription_id"`
	Attributes     map[string]string `json:"attributes"`
	Data           json.RawMessage   `json:"data"`
}

// Render returns the line for a job, newline included. at stands in for the
// event's time when the event has none.
func Render(job store.Job, at time.Time) ([]byte, error) {
	ev := job.Event
	t := ev.CreatedAt
	if t.IsZero() {
		t = at
	}
	attrs := ev.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	data := ev.Data
	if len(bytes.TrimSpace(data)) == 0 {
		data = json.RawMessage("null")
	}
	projectID := projectOf(job)
	// encoding/json compacts Data, so a line never contains a raw newline.
	b, err := json.Marshal(Line{
		DeliveryID: job.Delivery.ID, EventID: ev.ID, Type: ev.Type, Subject: ev.Subject,
		Time: t.UTC().Format(TimeFormat), ProjectID: projectID, SubscriptionID: job.Subscription.ID,
		Attributes: attrs, Data: data,
	})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// projectOf is the project a job's line belongs to: the subscription's (the
// event's when a job carries no subscription project).
func projectOf(job store.Job) string {
	if job.Subscription.ProjectID != "" {
		return job.Subscription.ProjectID
	}
	return job.Event.ProjectID
}

// Path is where the Sender with directory dir appends the lines of a
// project's log destination naming file.
func Path(dir, projectID, file string) string { return filepath.Join(dir, projectID, file) }

// DefaultMaxOpenFiles is how many log files a Sender keeps open when
// MaxOpenFiles is zero.
const DefaultMaxOpenFiles = 256

// Sender appends deliveries to files in Dir. Its zero value with Dir set is
// ready to use; it must not be copied after first use. Handles stay open
// until Close, or until more than MaxOpenFiles files are in use, when idle
// ones are closed.
type Sender struct {
	// Dir is the directory that holds every project's directory of log
	// files (Path). Both are created (0700) when the first line is written.
	Dir string
	// MaxOpenFiles bounds the handles kept open; zero means
	// DefaultMaxOpenFiles.
	MaxOpenFiles int

	mu    sync.Mutex
	files map[string]*file
}

// file is one open log file, shared by every send to it.
type file struct {
	mu     sync.Mutex // serialises writes; guards size and broken
	f      *os.File
	size   int64 // end of the last whole line written
	broken bool  // closed after an error; a new handle must be opened

	syncMu sync.Mutex // one fsync at a time; guards synced
	synced int64      // every byte before this offset is known to be durable

	refs int // sends using the handle; guarded by Sender.mu
}

// Send appends the delivery's line and reports Delivered once it is on disk.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	start := time.Now()
	res := s.send(job, at)
	res.Duration = time.Since(start)
	return res
}

func (s *Sender) send(job store.Job, at time.Time) dispatch.Result {
	cfg, err := ParseConfig(job.Subscription.Destination)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_settings", ErrorMessage: "log destination: " + err.Error()}
	}
	if s.Dir == "" {
		return dispatch.Result{ErrorCode: "log_dir_unset", ErrorMessage: "no log directory is configured for log destinations"}
	}
	project := projectOf(job)
	if err := CheckName(project); err != nil {
		return dispatch.Result{ErrorCode: "invalid_settings", ErrorMessage: "log destination: project id " + err.Error()}
	}
	line, err := Render(job, at)
	if err != nil {
		return dispatch.Result{ErrorCode: "payload_error", ErrorMessage: "render log line: " + err.Error()}
	}
	// A handle found broken (closed by a failed write of another send) is
	// replaced once; a second failure is reported.
	for try := 0; ; try++ {
		f, err := s.open(project, cfg.File)
		if err != nil {
			return failure("open", cfg.File, err)
		}
		err = s.write(project+"/"+cfg.File, f, line)
		if errors.Is(err, errBroken) && try == 0 {
			continue
		}
		if err != nil {
			return failure("write", cfg.File, err)
		}
		return dispatch.Result{Delivered: true}
	}
}

// write appends line to f and waits until it is durable, then releases f.
func (s *Sender) write(name string, f *file, line []byte) error {
	defer s.release(name, f)
	end, err := f.append(line)
	if err != nil {
		return err
	}
	if err := f.syncTo(end); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages:
		// start afresh with a new handle.
		f.close()
		if errors.Is(err, errBroken) {
			return err
		}
		return fmt.Errorf("fsync: %w", err)
	}
	return nil
}

var errBroken = errors.New("log file handle was closed after an error")

// append writes line with one write call and returns the offset just past it.
// A short or failed write is cut off again, so the file keeps ending with a
// whole line; if even that fails the handle is closed.
func (f *file) append(line []byte) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return 0, errBroken
	}
	n, err := f.f.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			if terr := f.f.Truncate(f.size); terr != nil {
				f.closeLocked()
			}
		}
		return 0, err
	}
	f.size += int64(n)
	return f.size, nil
}

// syncTo returns once every byte before end is durable. Sends that wait
// while another fsync runs are covered by the next single fsync.
func (f *file) syncTo(end int64) error {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	if f.synced >= end {
		return nil
	}
	f.mu.Lock()
	upTo, h, broken := f.size, f.f, f.broken
	f.mu.Unlock()
	if broken {
		return errBroken
	}
	if err := h.Sync(); err != nil {
		return err
	}
	f.synced = upTo
	return nil
}

func (f *file) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeLocked()
}

func (f *file) closeLocked() {
	if !f.broken {
		f.broken = true
		f.f.Close()
	}
}

// open returns the shared handle of a project's named file, opening it (and
// repairing a torn tail) on first use. The caller releases it with the key
// project/name.
func (s *Sender) open(project, fileName string) (*file, error) {
	name := project + "/" + fileName
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.files[name]; f != nil {
		f.refs++
		return f, nil
	}
	limit := s.MaxOpenFiles
	if limit <= 0 {
		limit = DefaultMaxOpenFiles
	}
	for n, f := range s.files {
		if len(s.files) < limit {
			break
		}
		if f.refs == 0 {
			f.close()
			delete(s.files, n)
		}
	}
	h, size, err := openFile(filepath.Join(s.Dir, project), fileName)
	if err != nil {
		return nil, err
	}
	if s.files == nil {
		s.files = map[string]*file{}
	}
	f := &file{f: h, size: size, synced: size, refs: 1}
	s.files[name] = f
	return f, nil
}

// release ends a send's use of f. A handle closed after an error is
// forgotten, so the next send opens the file afresh, repairing whatever the
// failure left behind.
func (s *Sender) release(name string, f *file) {
	f.mu.Lock()
	broken := f.broken
	f.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	f.refs--
	if broken && s.files[name] == f {
		delete(s.files, name)
	}
}

// Close closes every open file. Sends after Close open their files again.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, f := range s.files {
		f.mu.Lock()
		if !f.broken {
			f.broken = true
			errs = append(errs, f.f.Close())
		}
		f.mu.Unlock()
		delete(s.files, name)
	}
	return errors.Join(errs...)
}

// openFile creates dir if needed, opens name inside it for appending and
// truncates a torn last line. It returns the handle and the file's size.
func openFile(dir, name string) (*os.File, int64, error) {
	if err := CheckName(name); err != nil {
		return nil, 0, fmt.Errorf("file name %q %v", name, err)
	}
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, 0, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, 0, err
	}
	defer root.Close()
	created := false
	h, err := root.OpenFile(name, os.O_RDWR|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		h, err = root.OpenFile(name, os.O_RDWR|os.O_APPEND|os.O_CREATE, FileMode)
		created = err == nil
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := h.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", filepath.Join(dir, name))
	}
	if err != nil {
		h.Close()
		return nil, 0, err
	}
	size, err := repairTail(h, st.Size())
	if err != nil {
		h.Close()
		return nil, 0, fmt.Errorf("repair torn last line: %w", err)
	}
	if created {
		// Make the new directory entry durable too.
		if d, err := os.Open(dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return h, size, nil
}

// repairTail truncates f back to the end of its last complete line when the
// file does not end with a newline, and returns the resulting size.
func repairTail(f *os.File, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		return size, nil
	}
	keep, err := lastNewlineEnd(f, size)
	if err != nil {
		return 0, err
	}
	if err := f.Truncate(keep); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return keep, nil
}

// lastNewlineEnd returns the offset just past the last '\n' before size, or 0.
func lastNewlineEnd(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	end := size
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		chunk := buf[:n]
		if _, err := f.ReadAt(chunk, end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// failure turns a file system error into a retryable result with an error
// code that says what went wrong.
func failure(op, name string, err error) dispatch.Result {
	return dispatch.Result{Retryable: true, ErrorCode: ErrorCode(err), ErrorMessage: fmt.Sprintf("%s log file %s: %v", op, name, err)}
}

// ErrorCode names a file system error for an attempt's error code:
// disk_full, quota_exceeded, permission_denied, read_only_filesystem,
// too_many_open_files, not_a_directory or io_error.
func ErrorCode(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "disk_full"
	case errors.Is(err, syscall.EDQUOT):
		return "quota_exceeded"
	case errors.Is(err, syscall.EROFS):
		return "read_only_filesystem"
	case errors.Is(err, fs.ErrPermission):
		return "permission_denied"
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		return "too_many_open_files"
	case errors.Is(err, syscall.ENOTDIR):
		return "not_a_directory"
	default:
		return "io_error"
	}
}
