// Package config reads Carrier's settings from flags and CARRIER_* environment
// variables (a flag wins over the environment) and validates them, naming the
// setting in every error.
package config

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"carrier/internal/secret"
)

// Config holds every setting of `carrier serve`.
type Config struct {
	Listen               string
	DataDir              string
	DatabaseURL          string
	APIKey               string
	AllowPrivateNetworks bool
	// Dev is development mode (--dev): it turns AllowPrivateNetworks on, and
	// `carrier serve` prints a banner saying this is not for production.
	Dev                   bool
	RetryBase             time.Duration
	SecretRotationOverlap time.Duration
	LaneConcurrency       int
	MaxInFlight           int
	MaxInFlightPerProject int
	// MaxSubscriptionsPerProject bounds a project's subscriptions (0: no limit).
	MaxSubscriptionsPerProject int
	// MaxFanoutPerEvent bounds the deliveries one published event may
	// create (0: no limit).
	MaxFanoutPerEvent int
	// TemplateTimePerSecond is each project's share of template rendering
	// time on a node, a second (0: no limit).
	TemplateTimePerSecond time.Duration
	// PublishRate and PublishBurst are each project's publish allowance on
	// one node, events a second and at once (0: no limit; burst 0: twice the rate).
	PublishRate, PublishBurst int
	// ListBytesPerSecond bounds the list payload one project reads a second (0: no limit).
	ListBytesPerSecond int
	Retention          time.Duration
	ShutdownGrace      time.Duration
	// NoDelivery makes an API-only node: it accepts and stores, and the
	// other nodes deliver (CARRIER_DELIVER=false; PostgreSQL only).
	NoDelivery bool
	// LeaderLease is how long the cluster leader's lock lasts without
	// renewal: a leader that dies is replaced within about this long.
	LeaderLease time.Duration
	// DeliveryLease is how long a claim holds a delivery without renewal:
	// a node that stops (paused, cut off) loses its deliveries after it.
	DeliveryLease time.Duration
	// AlertInterval is how often the leader evaluates the alert rules.
	AlertInterval time.Duration
	// AlertDefaults gives each new project (and the default one) the
	// built-in alert rules.
	AlertDefaults bool
	// AlertRulesFile is a JSON file of alert rules applied at start ("" none).
	AlertRulesFile string
	// BalanceProbeInterval is how often the leader reads the provider's balance.
	BalanceProbeInterval time.Duration
	// ProviderName names the provider in alert messages; empty derives it
	// from ProviderURL.
	ProviderName string
	// MaxConnections caps the API's open client connections; more wait to
	// be accepted. BodyReadTimeout bounds how long a request body may take
	// to arrive after its headers.
	MaxConnections  int
	BodyReadTimeout time.Duration
	LogLevel        string

	ProviderURL     string
	ProviderKey     string
	Simulate        bool
	PublicURL       string
	CallbackTimeout time.Duration
	PollInterval    time.Duration
	TaskMaxAge      time.Duration
	PollBudget      int
	SubmitRetryBase time.Duration
	SpoolDir        string
	LogDir          string
	// ChatCompatibleHosts are the hosts (host or host:port, lower case) of
	// Slack- and Discord-compatible servers, whose webhook URLs need not have
	// the vendor's shape.
	ChatCompatibleHosts []string
	// PublishBacklogBytes and PublishBacklogWait bound what waits for the
	// store (see ingest.Backlog).
	PublishBacklogBytes int
	PublishBacklogWait  time.Duration
	// ConsolePath is where the operator console is served ("" when off).
	ConsolePath string
	// SNSEmailSMTP is the SMTP server of SNS email subscriptions, a JSON
	// object of email destination settings without "to" (checked at start,
	// where the email settings are known); "" when not configured.
	SNSEmailSMTP string
	// SNSLambdaFunctions maps Lambda function ARNs to the URL that receives
	// the SNS events of lambda subscriptions to them.
	SNSLambdaFunctions map[string]string
	// SecretKey (32 bytes), when set, seals secrets at rest and keys API key
	// hashes; SecretKeyPrevious opens what the key before it sealed, during
	// a rotation. See package secret.
	SecretKey, SecretKeyPrevious []byte
}

// Setting describes one configuration value, for flags, environment and docs.
type Setting struct {
	Flag, Env, Default, Help string
	set                      func(c *Config, v string) error
}

var consolePath = regexp.MustCompile(`^(/[A-Za-z0-9_-]+)+$`)

// MinAPIKeyLength is the shortest CARRIER_API_KEY accepted: the key is the
// admin credential, so a short, guessable one is refused at start.
const MinAPIKeyLength = 16

// Settings lists every setting in the order the README documents them.
var Settings = []Setting{
	{"listen", "CARRIER_LISTEN", "127.0.0.1:8080", "address the HTTP API listens on (host:port)", func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("must be host:port, such as 127.0.0.1:8080 or :8080")
		}
		c.Listen = v
		return nil
	}},
	{"data-dir", "CARRIER_DATA_DIR", "./carrier-data", "directory of the embedded SQLite database", func(c *Config, v string) error {
		if v == "" {
			return fmt.Errorf("must not be empty")
		}
		c.DataDir = v
		return nil
	}},
	{"database-url", "CARRIER_DATABASE_URL", "", "postgres:// URL; when set, PostgreSQL is used instead of SQLite", func(c *Config, v string) error {
		if v != "" && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
			return fmt.Errorf("must be a postgres:// or postgresql:// URL")
		}
		c.DatabaseURL = v
		return nil
	}},
	{"api-key", "CARRIER_API_KEY", "", fmt.Sprintf("bootstrap admin API key of the default project, at least %d characters (generated and printed once when unset)", MinAPIKeyLength), func(c *Config, v string) error {
		if v != "" && len(v) < MinAPIKeyLength {
			return fmt.Errorf("must be at least %d characters; it is the admin credential, so choose a long random value", MinAPIKeyLength)
		}
		c.APIKey = v
		return nil
	}},
	{"allow-private-networks", "CARRIER_ALLOW_PRIVATE_NETWORKS", "false", "let deliveries reach loopback and private addresses (development and tests only)", boolSetter(func(c *Config) *bool { return &c.AllowPrivateNetworks })},
	{"dev", "CARRIER_DEV", "false", "development mode: sets CARRIER_ALLOW_PRIVATE_NETWORKS=true so deliveries reach a local receiver, and says so in a banner at start; never use it in production", boolSetter(func(c *Config) *bool { return &c.Dev })},
	{"retry-base", "CARRIER_RETRY_BASE", "60s", "backoff unit: retry n waits multiplier^(n-1) x this", durationSetter(func(c *Config) *time.Duration { return &c.RetryBase }, time.Millisecond)},
	{"secret-rotation-overlap", "CARRIER_SECRET_ROTATION_OVERLAP", "24h", "how long a rotated-out webhook secret keeps signing", durationSetter(func(c *Config) *time.Duration { return &c.SecretRotationOverlap }, 0)},
	{"lane-concurrency", "CARRIER_LANE_CONCURRENCY", "16", "most attempts in flight to one webhook", intSetter(func(c *Config) *int { return &c.LaneConcurrency }, 1, 1000)},
	{"max-in-flight", "CARRIER_MAX_IN_FLIGHT", "4096", "most deliveries one process holds claimed (sending or queued behind a busy webhook)", intSetter(func(c *Config) *int { return &c.MaxInFlight }, 1, 100000)},
	{"max-subscriptions-per-project", "CARRIER_MAX_SUBSCRIPTIONS_PER_PROJECT", "1000", "most subscriptions (of every kind) one project may have, which bounds the deliveries one publish fans out to (0: no limit)", intSetter(func(c *Config) *int { return &c.MaxSubscriptionsPerProject }, 0, 1000000)},
	{"max-fanout-per-event", "CARRIER_MAX_FANOUT_PER_EVENT", "1000", "most deliveries one event published through the API or SNS may create; a publish matching more subscriptions is refused with 422 naming the setting and the count, and nothing is stored (0: no limit)", intSetter(func(c *Config) *int { return &c.MaxFanoutPerEvent }, 0, 1000000)},
	{"publish-rate", "CARRIER_PUBLISH_RATE", "0", "events a second one project may publish on each node (POST /v1/events, SNS Publish, queue sends over REST and SQS), a token bucket per project; more answer 429 rate_limited with Retry-After (SQS RequestThrottled, SNS Throttled) (0: no limit)", intSetter(func(c *Config) *int { return &c.PublishRate }, 0, 10000000)},
	{"publish-burst", "CARRIER_PUBLISH_BURST", "0", "events one project may publish at once on each node before CARRIER_PUBLISH_RATE applies, 10 or more (0: twice the rate, at least 10)", intSetter(func(c *Config) *int { return &c.PublishBurst }, 0, 10000000)},
	{"template-time-per-second", "CARRIER_TEMPLATE_TIME_PER_SECOND", "50ms", "template rendering time (chat messages, email subjects and bodies) one project may use a second on each node, with bursts of 1s; past it, its attempts wait (code template_time_exceeded) and keep their retries (0: no limit)", durationSetter(func(c *Config) *time.Duration { return &c.TemplateTimePerSecond }, 0)},
	{"list-bytes-per-second", "CARRIER_LIST_BYTES_PER_SECOND", "2097152", "list payload (events, tasks, dead letters) one project may read a second, with a burst of twice that; more answers 429 with Retry-After (0: no limit)", intSetter(func(c *Config) *int { return &c.ListBytesPerSecond }, 0, 1<<30)},
	{"max-in-flight-per-project", "CARRIER_MAX_IN_FLIGHT_PER_PROJECT", "0", "most of CARRIER_MAX_IN_FLIGHT one project may hold, so a tenant whose endpoints hang cannot starve the others (0: a quarter of it)", intSetter(func(c *Config) *int { return &c.MaxInFlightPerProject }, 0, 100000)},
	{"retention", "CARRIER_RETENTION", "720h", "how long events, deliveries, attempts, finished tasks and redriven dead letters are kept (0 keeps them forever)", durationSetter(func(c *Config) *time.Duration { return &c.Retention }, 0)},
	{"deliver", "CARRIER_DELIVER", "true", "run the delivery engine on this node; false makes an API-only node that accepts and stores while the other nodes deliver (PostgreSQL only)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		c.NoDelivery = !b
		return nil
	}},
	{"leader-lease", "CARRIER_LEADER_LEASE", "10s", "how long the cluster leader's lock lasts without renewal (PostgreSQL): a leader that dies is replaced within about this long", durationSetter(func(c *Config) *time.Duration { return &c.LeaderLease }, time.Second)},
	{"delivery-lease", "CARRIER_DELIVERY_LEASE", "5m", "how long a node's claim on a delivery lasts without renewal (renewed every 2 s, or a third of this when shorter); it must exceed the longest webhook timeout", durationSetter(func(c *Config) *time.Duration { return &c.DeliveryLease }, time.Second)},
	{"alert-interval", "CARRIER_ALERT_INTERVAL", "1s", "how often the leader evaluates the alert rules", durationSetter(func(c *Config) *time.Duration { return &c.AlertInterval }, 100*time.Millisecond)},
	{"alert-defaults", "CARRIER_ALERT_DEFAULTS", "true", "give each new project (and the default project) the built-in alert rules (balance, balance check failing, error rate spike, queue backup, endpoint disabled, dead letters, daily summary)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		c.AlertDefaults = b
		return nil
	}},
	{"alert-rules-file", "CARRIER_ALERT_RULES_FILE", "", "a JSON file of alert rules (an array of rules, each with its \"project\"), created or updated by name at start; a rule that does not validate stops the start with its entry and field", func(c *Config, v string) error {
		c.AlertRulesFile = strings.TrimSpace(v)
		return nil
	}},
	{"balance-probe-interval", "CARRIER_BALANCE_PROBE_INTERVAL", "60s", "how often the leader reads the provider's balance (getbalance), with up to a tenth of it as random jitter", durationSetter(func(c *Config) *time.Duration { return &c.BalanceProbeInterval }, 100*time.Millisecond)},
	{"provider-name", "CARRIER_PROVIDER_NAME", "", "the provider's name in alert messages (\"CaptchaAI\"); empty derives it from CARRIER_PROVIDER_URL", func(c *Config, v string) error {
		c.ProviderName = strings.TrimSpace(v)
		return nil
	}},
	{"shutdown-grace", "CARRIER_SHUTDOWN_GRACE", "10s", "how long in-flight attempts may finish at shutdown", durationSetter(func(c *Config) *time.Duration { return &c.ShutdownGrace }, 0)},
	{"max-connections", "CARRIER_MAX_CONNECTIONS", "1024", "most client connections the API keeps open at once; more wait to be accepted", intSetter(func(c *Config) *int { return &c.MaxConnections }, 1, 1000000)},
	{"body-read-timeout", "CARRIER_BODY_READ_TIMEOUT", "10s", "how long a request body may take to arrive after its headers (a slower client is cut off)", durationSetter(func(c *Config) *time.Duration { return &c.BodyReadTimeout }, time.Millisecond)},
	{"provider-url", "CARRIER_PROVIDER_URL", "", "base URL of the 2captcha-compatible provider for async tasks, such as https://2captcha.com or https://ocr.captchaai.com", func(c *Config, v string) error {
		if v != "" {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("must be an http:// or https:// URL")
			}
		}
		c.ProviderURL = strings.TrimRight(v, "/")
		return nil
	}},
	{"provider-key", "CARRIER_PROVIDER_KEY", "", "API key of the provider (never shown by the API)", func(c *Config, v string) error {
		c.ProviderKey = v
		return nil
	}},
	{"simulate", "CARRIER_SIMULATE", "false", "run a provider simulator in-process and use it as the provider (demos and tests)", boolSetter(func(c *Config) *bool { return &c.Simulate })},
	{"public-url", "CARRIER_PUBLIC_URL", "", "base URL at which the provider reaches Carrier's pingback receiver (default http://<listen address>)", func(c *Config, v string) error {
		if v != "" {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("must be an http:// or https:// URL")
			}
		}
		c.PublicURL = strings.TrimRight(v, "/")
		return nil
	}},
	{"callback-timeout", "CARRIER_CALLBACK_TIMEOUT", "120s", "how long after submission a task waits for its pingback before the fallback poller asks", durationSetter(func(c *Config) *time.Duration { return &c.CallbackTimeout }, time.Millisecond)},
	{"poll-interval", "CARRIER_POLL_INTERVAL", "30s", "how often the fallback poller asks about a task still without a result", durationSetter(func(c *Config) *time.Duration { return &c.PollInterval }, time.Millisecond)},
	{"task-max-age", "CARRIER_TASK_MAX_AGE", "10m", "a task without a result after this long expires", durationSetter(func(c *Config) *time.Duration { return &c.TaskMaxAge }, time.Millisecond)},
	{"poll-budget", "CARRIER_POLL_BUDGET", "60", "most result requests the fallback poller sends upstream per minute (each asks about up to 100 tasks)", intSetter(func(c *Config) *int { return &c.PollBudget }, 1, 100000)},
	{"submit-retry-base", "CARRIER_SUBMIT_RETRY_BASE", "5s", "backoff unit for retrying submissions after transient provider errors", durationSetter(func(c *Config) *time.Duration { return &c.SubmitRetryBase }, time.Millisecond)},
	{"spool-dir", "CARRIER_SPOOL_DIR", "", "directory of the local spool that takes callbacks and publishes while the database is down (default <data-dir>/spool)", func(c *Config, v string) error {
		c.SpoolDir = v
		return nil
	}},
	{"log-dir", "CARRIER_LOG_DIR", "", "directory of the files that log destinations append to (default <data-dir>/logs); a subscription names only a file in it", func(c *Config, v string) error {
		c.LogDir = v
		return nil
	}},
	{"chat-compatible-hosts", "CARRIER_CHAT_COMPATIBLE_HOSTS", "", "comma-separated hosts (host or host:port, exact names) of Slack- or Discord-compatible servers such as Mattermost or Rocket.Chat, whose webhook URLs slack and discord destinations accept without the vendor's URL shape (SSRF rules still apply)", func(c *Config, v string) error {
		hosts, err := hostList(v)
		c.ChatCompatibleHosts = hosts
		return err
	}},
	{"publish-backlog-bytes", "CARRIER_PUBLISH_BACKLOG_BYTES", "268435456", "most bytes of accepted publishes that may wait for the store to commit them; past it, and past CARRIER_PUBLISH_BACKLOG_WAIT, a publish is refused with 503 and Retry-After (0: only the commit queue's length bounds them)", intSetter(func(c *Config) *int { return &c.PublishBacklogBytes }, 0, 1<<40)},
	{"publish-backlog-wait", "CARRIER_PUBLISH_BACKLOG_WAIT", "2s", "how long a publish may wait to be queued for the store before it is refused with 503 and Retry-After", durationSetter(func(c *Config) *time.Duration { return &c.PublishBacklogWait }, time.Millisecond)},
	{"console-path", "CARRIER_CONSOLE_PATH", "/console", `path the operator console is served at (sign in with an API key); "off" serves none`, func(c *Config, v string) error {
		switch {
		case v == "off":
			c.ConsolePath = ""
			return nil
		case !consolePath.MatchString(v) || v == "/v1" || strings.HasPrefix(v, "/v1/") || v == "/sns" || v == "/callbacks":
			return fmt.Errorf(`must be a path such as /console (letters, digits, "-", "_" and "/", not ending in "/", not /v1, /sns or /callbacks), or "off"`)
		}
		c.ConsolePath = v
		return nil
	}},
	{"sns-email-smtp", "CARRIER_SNS_EMAIL_SMTP", "", `SMTP server of SNS email and email-json subscriptions, as a JSON object of email destination settings without "to", such as {"host":"smtp.example.com","port":587,"username":"u","password":"p","from":"sns@example.com"} (unset: Subscribe refuses those protocols)`, func(c *Config, v string) error {
		if v != "" {
			var obj map[string]any
			if err := json.Unmarshal([]byte(v), &obj); err != nil {
				return fmt.Errorf("must be a JSON object of email settings (host, port, security, username, password, from): %v", err)
			}
		}
		c.SNSEmailSMTP = v
		return nil
	}},
	{"sns-lambda-functions", "CARRIER_SNS_LAMBDA_FUNCTIONS", "", `JSON object from Lambda function ARN to the http(s) URL that receives the Lambda SNS events of lambda subscriptions to it, such as {"arn:aws:lambda:us-east-1:123456789012:function:audit":"https://audit.internal/sns"}; a subscription to an ARN not listed is accepted and reported as unmapped`, func(c *Config, v string) error {
		c.SNSLambdaFunctions = nil
		if v == "" {
			return nil
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return fmt.Errorf("must be a JSON object of function ARN to URL: %v", err)
		}
		for arn, target := range m {
			if p := strings.Split(arn, ":"); len(p) < 7 || p[0] != "arn" || p[2] != "lambda" || p[5] != "function" {
				return fmt.Errorf("%q is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)", arn)
			}
			u, err := url.Parse(target)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("the URL of %s must be an http:// or https:// URL", arn)
			}
		}
		c.SNSLambdaFunctions = m
		return nil
	}},
	{"secret-key", "CARRIER_SECRET_KEY", "", "32 bytes in base64 or hex: when set, webhook and SQS secrets, webhook custom header values, chat webhook URLs, email passwords and CAPTCHA vendor keys are stored encrypted (AES-256-GCM) and API key hashes are keyed (HMAC) with it", func(c *Config, v string) error {
		return secretKey(&c.SecretKey, v)
	}},
	{"secret-key-previous", "CARRIER_SECRET_KEY_PREVIOUS", "", "the CARRIER_SECRET_KEY before a rotation: what it sealed still opens, and is sealed again with the new key at start", func(c *Config, v string) error {
		return secretKey(&c.SecretKeyPrevious, v)
	}},
	{"log-level", "CARRIER_LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			c.LogLevel = v
			return nil
		}
		return fmt.Errorf("must be debug, info, warn or error")
	}},
}

// hostList reads a comma-separated list of host names or IP addresses, each
// optionally with a port, and returns them in lower case (empty entries are
// skipped). A URL, a path or a wildcard is refused: entries match a
// destination's host exactly.
// secretKey sets *dst to the key v names, nil when v is empty.
func secretKey(dst *[]byte, v string) error {
	if v == "" {
		*dst = nil
		return nil
	}
	k, err := secret.ParseKey(v)
	*dst = k
	return err
}

func hostList(v string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(v, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" {
			continue
		}
		host := strings.Trim(e, "[]")
		if strings.ContainsAny(e, "/@*? ") {
			host = "" // a URL or a pattern, refused below
		} else if net.ParseIP(host) == nil {
			if h, port, err := net.SplitHostPort(e); err == nil {
				if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
					return nil, fmt.Errorf("entry %q: the port must be a number from 1 to 65535", e)
				}
				host = h
			}
		}
		if net.ParseIP(host) == nil && !hostName.MatchString(host) {
			return nil, fmt.Errorf("entry %q must be a host name or IP address, optionally with :port, such as chat.example.com or chat.example.com:8065 (no scheme, path or wildcard)", e)
		}
		out = append(out, e)
	}
	return out, nil
}

// hostName matches a DNS host name (labels of letters, digits, hyphens and
// underscores, which container names use), optionally ending in a dot.
var hostName = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$`)

func boolSetter(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		*field(c) = b
		return nil
	}
}

func durationSetter(field func(*Config) *time.Duration, min time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("must be a duration such as 60s, 100ms or 24h")
		}
		if d < min || (min > 0 && d == 0) {
			return fmt.Errorf("must be at least %v", min)
		}
		if d < 0 {
			return fmt.Errorf("must not be negative")
		}
		*field(c) = d
		return nil
	}
}

func intSetter(field func(*Config) *int, lo, hi int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be a whole number from %d to %d", lo, hi)
		}
		*field(c) = n
		return nil
	}
}

// Load parses args (after the subcommand) and the environment given by getenv.
func Load(name string, args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	values := map[string]string{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: carrier %s [flags]\n\nEvery flag also reads the CARRIER_* variable named in its help; a flag wins over the variable.\n\n", name)
		fs.PrintDefaults()
	}
	for _, s := range Settings {
		v := s.Default
		if e := getenv(s.Env); e != "" {
			v = e
		}
		values[s.Flag] = v
		s := s
		help := fmt.Sprintf("%s (env %s, default %q)", s.Help, s.Env, s.Default)
		set := func(v string) error {
			values[s.Flag] = v
			return nil
		}
		if s.Default == "true" || s.Default == "false" {
			fs.BoolFunc(s.Flag, help, set)
		} else {
			fs.Func(s.Flag, help, set)
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range Settings {
		if err := s.set(&c, values[s.Flag]); err != nil {
			shown := values[s.Flag]
			if s.Env == "CARRIER_PROVIDER_KEY" || s.Env == "CARRIER_API_KEY" || strings.HasPrefix(s.Env, "CARRIER_SECRET_KEY") {
				shown = "***"
			}
			return c, fmt.Errorf("invalid setting %s (--%s) = %q: %v", s.Env, s.Flag, shown, err)
		}
	}
	if c.Dev {
		// Development mode exists so that a newcomer's local receiver on
		// 127.0.0.1 can be reached without knowing the SSRF setting's name.
		c.AllowPrivateNetworks = true
	}
	if c.SecretKeyPrevious != nil && c.SecretKey == nil {
		return c, fmt.Errorf("invalid setting CARRIER_SECRET_KEY_PREVIOUS (--secret-key-previous): needs CARRIER_SECRET_KEY, the key it is rotated to")
	}
	if c.PublishBurst > 0 && c.PublishRate == 0 {
		return c, fmt.Errorf("invalid setting CARRIER_PUBLISH_BURST (--publish-burst): needs CARRIER_PUBLISH_RATE, the rate it is the burst of")
	}
	if c.PublishBurst > 0 && c.PublishBurst < 10 {
		return c, fmt.Errorf("invalid setting CARRIER_PUBLISH_BURST (--publish-burst) = %d: must be 0 or at least 10, the largest SQS and SNS batch", c.PublishBurst)
	}
	if c.NoDelivery && c.DatabaseURL == "" {
		return c, fmt.Errorf("invalid setting CARRIER_DELIVER (--deliver): false needs CARRIER_DATABASE_URL, so that other nodes deliver; on SQLite the one process must deliver")
	}
	if c.ProviderURL != "" && c.ProviderKey == "" && !c.Simulate {
		return c, fmt.Errorf("invalid setting CARRIER_PROVIDER_KEY (--provider-key): required when CARRIER_PROVIDER_URL is set")
	}
	return c, nil
}
