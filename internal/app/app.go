// Package app wires Carrier together and runs it: store, matcher, publisher,
// delivery engine, HTTP API and background jobs, with a graceful shutdown.
package app

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"carrier/internal/alert"
	"carrier/internal/api"
	"carrier/internal/auth"
	"carrier/internal/captcha"
	"carrier/internal/captcha/frontend"
	"carrier/internal/captcha/hcaptcha"
	"carrier/internal/captcha/recaptcha"
	"carrier/internal/captcha/tencent"
	"carrier/internal/captcha/turnstile"
	"carrier/internal/cluster"
	"carrier/internal/config"
	"carrier/internal/console"
	"carrier/internal/dest"
	"carrier/internal/dest/alertmanager"
	"carrier/internal/dest/discord"
	"carrier/internal/dest/email"
	"carrier/internal/dest/logfile"
	"carrier/internal/dest/pingback"
	destqueue "carrier/internal/dest/queue"
	"carrier/internal/dest/slack"
	"carrier/internal/dest/snsemail"
	"carrier/internal/dest/snshttp"
	"carrier/internal/dest/snslambda"
	"carrier/internal/dest/webhook"
	"carrier/internal/dispatch"
	"carrier/internal/ingest"
	"carrier/internal/maintenance"
	"carrier/internal/match"
	"carrier/internal/metrics"
	"carrier/internal/netguard"
	"carrier/internal/outage"
	"carrier/internal/outbox"
	"carrier/internal/provider"
	"carrier/internal/provider/simulator"
	"carrier/internal/queue"
	"carrier/internal/secret"
	"carrier/internal/sns"
	"carrier/internal/sns/signing"
	"carrier/internal/spool"
	"carrier/internal/sqs"
	"carrier/internal/store"
	"carrier/internal/store/postgres"
	"carrier/internal/store/sqlite"
	"carrier/internal/subscription"
	"carrier/internal/task"
	"carrier/internal/topic"
	"carrier/internal/twocaptcha"
)

// DefaultProjectID is the project the bootstrap admin key belongs to.
const DefaultProjectID = "default"

// App is one running Carrier process.
type App struct {
	Config    config.Config
	Store     store.Store
	Publisher *ingest.Publisher
	Engine    *dispatch.Engine
	Matcher   *match.Matcher
	API       *api.Server
	// Tasks runs async tasks; nil when no provider is configured.
	Tasks *task.Service
	// Queues runs the pull queues.
	Queues *queue.Service
	// Pingbacks keeps the pingback subscriptions of the 2captcha front.
	Pingbacks *pingback.Registry
	// Outbox publishes the system events (webhook.disabled) that state
	// changes wrote to the outbox in their own transactions.
	Outbox *outbox.Relay
	// Spooler takes callbacks and publishes while the store is down.
	Spooler *outage.Spooler
	// Simulator is the in-process provider simulator (--simulate), or nil.
	Simulator *simulator.Simulator
	Log       *slog.Logger
	// BootstrapKey is the admin key generated on first start ("" otherwise).
	BootstrapKey string
	// Node is this process's id in the cluster: the owner of its leases.
	Node string
	// Elector says whether this node leads the cluster (runs maintenance).
	Elector *cluster.Elector
	// Notifier wakes the other nodes (and this one) after a change.
	Notifier cluster.Notifier
	// Alerts runs alert rules and reads alerts.
	Alerts *alert.Service
	// Captcha verifies CAPTCHA tokens for the projects' sites.
	Captcha *captcha.Service

	heartbeat     *cluster.Heartbeater
	maintainer    *cluster.Maintainer
	clusterMx     *metrics.Cluster
	alertMx       *metrics.Alerts
	refreshWanted chan struct{} // another node changed subscriptions

	// Topics is the SNS topics service.
	Topics *topic.Service
	// SNSSigner signs SNS messages (shared by every node through the store).
	SNSSigner *signing.Signer
	listener  net.Listener
	// publicURL is the base URL at which others reach this node: the
	// configured CARRIER_PUBLIC_URL, else http://<listen address> once
	// Listen has opened it.
	publicURL atomic.Pointer[string]
	server    *http.Server
	spool     *spool.Spool
	logs      *logfile.Sender
}

// Options are test and embedding hooks beyond the configuration.
type Options struct {
	// Resolver replaces DNS for deliveries and URL checks.
	Resolver netguard.Resolver
	// Dispatch adjusts the engine's configuration after it is derived from Config.
	Dispatch func(*dispatch.Config)
	// Tasks adjusts the task service's configuration after it is derived from Config.
	Tasks func(*task.Config)
	// EmailTLS, when set, is the email destination's base TLS configuration
	// (the roots of a private mail server, or of a test's stand-in).
	EmailTLS *tls.Config
	// Outbox adjusts the outbox relay's configuration (tests: Hold).
	Outbox func(*outbox.Config)
	// Notifier replaces the cluster notifier (benchmarks: &cluster.Local{}
	// on PostgreSQL measures the nodes with only their fallback polls).
	Notifier cluster.Notifier
	// Alerts adjusts the alert evaluator and the balance prober (tests: a
	// controlled clock).
	Alerts func(*alert.Evaluator, *alert.Prober)
}

// OpenStore opens and migrates the store the configuration selects.
func OpenStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	var (
		s   store.Store
		err error
	)
	if cfg.DatabaseURL != "" {
		s, err = postgres.Open(cfg.DatabaseURL)
	} else {
		s, err = sqlite.Open(cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// sealSecrets puts the at-rest encryption layer over st when
// CARRIER_SECRET_KEY is set, and seals again with it whatever is stored in
// plain text or under CARRIER_SECRET_KEY_PREVIOUS (see package secret).
func sealSecrets(ctx context.Context, st store.Store, cfg config.Config, log *slog.Logger) (store.Store, error) {
	if cfg.SecretKey == nil {
		return st, nil
	}
	keys, err := secret.NewKeys(cfg.SecretKey, cfg.SecretKeyPrevious)
	if err != nil {
		return st, fmt.Errorf("CARRIER_SECRET_KEY: %w", err)
	}
	sealed := secret.Wrap(st, keys)
	n, err := sealed.Reseal(ctx)
	if err != nil {
		return st, fmt.Errorf("seal stored secrets with CARRIER_SECRET_KEY: %w", err)
	}
	if n > 0 {
		log.Info("sealed stored secrets with CARRIER_SECRET_KEY", "records", n)
	}
	return sealed, nil
}

// New builds a Carrier process; Listen and Run start it.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (*App, error) {
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if st, err = sealSecrets(ctx, st, cfg, log); err != nil {
		st.Close()
		return nil, err
	}
	a := &App{Config: cfg, Store: st, Log: log, Node: cluster.NewNodeID()}
	exclusive := st.Engine() == "sqlite" // the data directory is locked to one process
	switch {
	case opts.Notifier != nil:
		a.Notifier = opts.Notifier
	case exclusive:
		a.Notifier = &cluster.Local{}
	default:
		a.Notifier = postgres.NewNotifier(cfg.DatabaseURL, log)
	}
	a.Elector = &cluster.Elector{Locker: st, Node: a.Node, Lease: cfg.LeaderLease, Exclusive: exclusive, Log: log}
	a.heartbeat = &cluster.Heartbeater{Store: st, Node: a.Node, Interval: 2 * time.Second, Log: log}
	if a.BootstrapKey, err = bootstrap(ctx, st, cfg.APIKey, log); err != nil {
		st.Close()
		return nil, err
	}
	if a.Matcher, err = match.NewMatcher(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	mx := metrics.New(st)
	committers := 1
	if st.Engine() == "postgres" {
		committers = 4
	}
	a.Publisher = ingest.NewPublisher(st, a.Matcher, mx, committers)
	a.Publisher.Backlog = ingest.Backlog{MaxBytes: int64(cfg.PublishBacklogBytes), MaxWait: cfg.PublishBacklogWait}
	a.Publisher.MaxFanout = cfg.MaxFanoutPerEvent
	// One allowance per project for everything a tenant publishes or sends.
	publishLimit := ingest.NewRateLimiter(cfg.PublishRate, cfg.PublishBurst)

	guard := &netguard.Guard{AllowPrivate: cfg.AllowPrivateNetworks, Resolver: opts.Resolver}
	dcfg := dispatch.DefaultConfig()
	dcfg.RetryBase = cfg.RetryBase
	dcfg.LaneConcurrency = cfg.LaneConcurrency
	dcfg.MaxInFlight = cfg.MaxInFlight
	dcfg.MaxInFlightPerProject = cfg.MaxInFlightPerProject
	dcfg.ShutdownGrace = cfg.ShutdownGrace
	if cfg.DeliveryLease > 0 {
		dcfg.Lease = cfg.DeliveryLease
		dcfg.RenewInterval = min(dcfg.RenewInterval, cfg.DeliveryLease/3)
	}
	if !exclusive {
		// Other nodes' work arrives by notification: the claim poll is
		// only the fallback for a lost one.
		dcfg.PollInterval = time.Second
	}
	if opts.Dispatch != nil {
		opts.Dispatch(&dcfg)
	}
	client := guard.Client(cfg.LaneConcurrency)
	snsSigner, err := signing.Load(ctx, st, time.Now())
	if err != nil {
		st.Close()
		return nil, err
	}
	a.SNSSigner = snsSigner
	logDir := cfg.LogDir
	if logDir == "" {
		logDir = filepath.Join(cfg.DataDir, "logs")
	}
	a.logs = &logfile.Sender{Dir: logDir}
	a.Queues = queue.New(st)
	a.Queues.Limit = publishLimit
	// One registry of destination kinds, handed to the engine (send) and to
	// the API (validate, show, summarise): a kind is registered once, here.
	// Chat settings are checked again when sent, with the same hosts.
	chatHosts := dest.NewCompatibleHosts(cfg.ChatCompatibleHosts)
	renders := dest.NewRenderShare(cfg.TemplateTimePerSecond) // one share per project across every templated kind
	destinations := dest.NewRegistry(webhook.Kind)            // rows without a kind predate kinds: webhooks
	destinations.Register(&webhook.Sender{Client: client, RetryAfterCap: dcfg.RetryAfterCap})
	destinations.Register(&discord.Sender{Client: client, Compatible: chatHosts, Renders: renders})
	destinations.Register(&slack.Sender{Client: client, Compatible: chatHosts, Renders: renders})
	mailer := &email.Sender{AllowPrivate: cfg.AllowPrivateNetworks, TLSConfig: opts.EmailTLS, Renders: renders}
	destinations.Register(mailer)
	snsMail := &snsemail.Sender{Mail: mailer, Signer: snsSigner, PublicURL: a.PublicURL}
	if cfg.SNSEmailSMTP != "" {
		// Checked as an email destination's settings, with a recipient for the check.
		var settings map[string]any
		json.Unmarshal([]byte(cfg.SNSEmailSMTP), &settings)
		settings["to"] = []string{"check@example.com"}
		raw, _ := json.Marshal(settings)
		smtp, err := email.ParseConfig(raw)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("CARRIER_SNS_EMAIL_SMTP: %w", err)
		}
		snsMail.SMTP = &smtp
	}
	destinations.Register(snsMail)
	destinations.Register(&snslambda.Sender{Client: client, Functions: cfg.SNSLambdaFunctions, Signer: snsSigner, PublicURL: a.PublicURL,
		RetryAfterCap: dcfg.RetryAfterCap})
	destinations.Register(a.logs)
	queueSender := &destqueue.Sender{Queues: a.Queues, Signer: snsSigner, PublicURL: a.PublicURL}
	destinations.Register(queueSender)
	destinations.Register(&pingback.Sender{Client: client})
	destinations.Register(&snshttp.Sender{Client: client, Signer: snsSigner, PublicURL: a.PublicURL, RetryAfterCap: dcfg.RetryAfterCap})
	destinations.Register(&alertmanager.Sender{Client: client, RetryAfterCap: dcfg.RetryAfterCap, ExternalURL: cfg.PublicURL})
	a.Pingbacks = &pingback.Registry{Store: st, Refresh: a.subscriptionsChanged}
	a.Engine = dispatch.New(dcfg, st, destinations, a.Node, mx, log)
	a.Publisher.OnCommit = a.deliveriesDue
	a.Queues.PollInterval = queueFallbackPoll
	a.Queues.Broadcast = func(id string) { a.Notifier.Notify(cluster.TopicQueue, id) }
	a.Notifier.Listen(cluster.TopicDeliveries, func(string) { a.Engine.Wake() })
	a.Notifier.Listen(cluster.TopicQueue, a.Queues.Wake)
	a.Notifier.Listen(cluster.TopicSubscriptions, a.refreshSoon)
	a.refreshWanted = make(chan struct{}, 1)
	ocfg := outbox.DefaultConfig()
	if opts.Outbox != nil {
		opts.Outbox(&ocfg)
	}
	// The relay leases rows as the engine's node, whose heartbeats let other
	// nodes rescue its leases if it dies.
	a.Outbox = outbox.New(ocfg, st, a.Publisher, a.Node, log)
	a.Engine.OnDisable(a.Outbox.Wake)

	if err := a.setUpTasks(mx, opts); err != nil {
		st.Close()
		return nil, err
	}
	if a.Tasks != nil {
		a.Tasks.SetPingbacks(a.Pingbacks)
	}
	subscriptions := subscription.New(subscription.Deps{
		Store: st, Destinations: destinations, Guard: guard, Queues: a.Queues, Publisher: a.Publisher,
		Refresh: a.subscriptionsChanged, Wake: a.deliveriesDue, RotationOverlap: cfg.SecretRotationOverlap,
		MaxSubscriptions: cfg.MaxSubscriptionsPerProject, Log: log,
	})
	keys := auth.New(st)
	keys.Revoked = func() { a.Notifier.Notify(cluster.TopicKeys, a.Node) }
	a.Notifier.Listen(cluster.TopicKeys, func(string) { keys.ForgetKeys() })
	providerName, providerSite := alert.ProviderIdentity(cfg.ProviderURL)
	if cfg.ProviderName != "" {
		providerName = cfg.ProviderName
	}
	a.Alerts = &alert.Service{Store: st, Provider: providerName, ProviderSite: providerSite, Wake: a.Outbox.Wake}
	if cfg.AlertDefaults {
		keys.Created = a.Alerts.EnsureDefaults
		if err := a.Alerts.EnsureDefaults(ctx, DefaultProjectID); err != nil {
			st.Close()
			return nil, err
		}
	}
	if err := applyAlertRules(ctx, st, a.Alerts, cfg.AlertRulesFile); err != nil {
		st.Close()
		return nil, err
	}
	// CAPTCHA verification: the vendors send through the SSRF guard (the
	// deadline per site bounds every call), one HTTP client shared.
	vendorClient := guard.Client(0)
	cmx := mx.NewCaptcha()
	a.Captcha = &captcha.Service{Store: st, Guard: guard, Log: log, Wake: a.Outbox.Wake, Decided: cmx.Decided, Circuit: cmx.CircuitChanged,
		Vendors: map[string]captcha.Vendor{}}
	for _, v := range []captcha.Vendor{tencent.New(vendorClient), recaptcha.New(vendorClient), hcaptcha.New(vendorClient), turnstile.New(vendorClient)} {
		a.Captcha.Vendors[v.Name()] = v
	}
	deps := api.Deps{
		Store: st, Publisher: a.Publisher, Metrics: mx, Log: log, Subscriptions: subscriptions, Keys: keys,
		Tasks: a.Tasks, Queues: a.Queues, Alerts: a.Alerts, Captcha: a.Captcha,
		Spool:              a.Spooler, // setUpTasks always opens one
		ListBytesPerSecond: cfg.ListBytesPerSecond,
		PublishLimit:       publishLimit,
	}
	deps.Destinations = destinations
	deps.SQS = &sqs.Handler{Store: st, Queues: a.Queues, PublicURL: cfg.PublicURL, Log: log}
	deps.Topics = topic.New(st, a.Publisher, subscriptions)
	a.Topics = deps.Topics
	deps.Topics.EmailEnabled, deps.Topics.LambdaFunctions = cfg.SNSEmailSMTP != "", cfg.SNSLambdaFunctions
	deps.Topics.DeadLetters = queueSender
	deps.Topics.Limit = publishLimit
	a.Engine.OnFailed(deps.Topics.DeadLetter)
	snsHandler := &sns.Handler{Credentials: st, Topics: deps.Topics, Signer: snsSigner, Log: log}
	deps.SNS, deps.SNSPublic = snsHandler, http.HandlerFunc(snsHandler.ServePublic)
	// The 2captcha front is served on the API's mux and checks its key
	// parameter with the key service the API authenticates with.
	front := &twocaptcha.Front{Store: st, Tasks: a.Tasks, Auth: keys, Guard: guard, Pingbacks: a.Pingbacks, Refusal: subscription.Refusal, Log: log}
	deps.Fronts = front.Routes()
	maps.Copy(deps.Fronts, frontend.Routes()) // dr.js and its example page
	if cfg.ConsolePath != "" {
		con, err := console.New(ctx, console.Deps{Store: st, Auth: keys, Subscriptions: subscriptions, Destinations: destinations,
			Publisher: a.Publisher, PublishLimit: publishLimit, Queues: a.Queues, Tasks: a.Tasks, Spool: a.Spooler,
			Alerts: a.Alerts, Captcha: a.Captcha, Prefix: cfg.ConsolePath, Log: log})
		if err != nil {
			st.Close()
			return nil, err
		}
		deps.Fronts[cfg.ConsolePath+"/"] = con
		deps.Fronts["GET "+cfg.ConsolePath] = http.RedirectHandler(cfg.ConsolePath+"/", http.StatusSeeOther)
	}
	a.API = api.New(deps)
	a.Pingbacks.Quota = subscriptions.CheckQuota

	a.clusterMx = mx.NewCluster()
	services := []cluster.Service{
		&maintenance.Rescuer{Store: st, Node: a.Node, NodeTimeout: nodeTimeout, Exclusive: exclusive, Wake: a.deliveriesDue, Log: log},
		&maintenance.Pruner{Store: st, Retention: cfg.Retention},
		&maintenance.QueuePruner{Queues: a.Queues},
	}
	if parts, ok := st.(store.Partitions); ok && st.Engine() == "postgres" {
		services = append(services, &maintenance.Partitioner{Store: parts, Retention: cfg.Retention})
	}
	if a.Tasks != nil {
		services = append(services, &maintenance.Poller{Tasks: a.Tasks, Every: a.Tasks.Tick()}, &maintenance.Expirer{Tasks: a.Tasks, Every: a.Tasks.Tick()})
	}
	a.alertMx = mx.NewAlerts()
	evaluator := &alert.Evaluator{Store: st, Every: cfg.AlertInterval, Provider: providerName, ProviderSite: providerSite,
		Wake: a.Outbox.Wake, Log: log, Evaluated: a.alertMx.Evaluated}
	var prober *alert.Prober
	if a.Tasks != nil {
		prober = &alert.Prober{Provider: a.Tasks.Provider(), Store: st, Every: cfg.BalanceProbeInterval, Probed: a.alertMx.Probed}
	}
	if opts.Alerts != nil {
		opts.Alerts(evaluator, prober)
	}
	services = append(services, evaluator, &maintenance.DRTicketPruner{Captcha: a.Captcha})
	if prober != nil {
		services = append(services, prober)
	}
	a.maintainer = &cluster.Maintainer{Elector: a.Elector, Services: services, Log: log,
		Rounds: func(name string) { a.clusterMx.MaintenanceRounds.WithLabelValues(name).Inc() }}
	return a, nil
}

// watchLeadership keeps the carrier_leader gauge true.
func (a *App) watchLeadership(ctx context.Context) {
	for {
		leading, changed := a.Elector.Leading()
		if leading {
			a.clusterMx.Leader.Set(1)
		} else {
			a.clusterMx.Leader.Set(0)
		}
		select {
		case <-ctx.Done():
			a.clusterMx.Leader.Set(0)
			return
		case <-changed:
		}
	}
}

// nodeTimeout is how long without a heartbeat makes a node count as dead,
// and its leases be given back by the leader.
const nodeTimeout = 15 * time.Second

// queueFallbackPoll is how often a long poll looks at the store (a read)
// in case a notification from another node was lost.
const queueFallbackPoll = time.Second

// matcherFallbackPoll is how often the matcher checks the store's
// subscription version in case a notification was lost.
const matcherFallbackPoll = 5 * time.Second

// subscriptionsChanged makes this node's matcher see a subscription change
// at once and tells the other nodes to reload theirs.
func (a *App) subscriptionsChanged(ctx context.Context, force bool) error {
	err := a.Matcher.Refresh(ctx, force)
	a.Notifier.Notify(cluster.TopicSubscriptions, a.Node)
	return err
}

// deliveriesDue wakes this node's engine and the other nodes' engines.
func (a *App) deliveriesDue() {
	a.Engine.Wake()
	a.Notifier.Notify(cluster.TopicDeliveries, "")
}

// refreshSoon asks the matcher loop to reload (another node changed
// subscriptions); notifications arriving during a reload make one more.
func (a *App) refreshSoon(from string) {
	if from == a.Node {
		return // this node's matcher was refreshed before the notification went out
	}
	select {
	case a.refreshWanted <- struct{}{}:
	default:
	}
}

// setUpTasks starts the simulator (--simulate), builds the task service when a
// provider is configured, and opens the local spool.
func (a *App) setUpTasks(mx *metrics.Metrics, opts Options) error {
	cfg := &a.Config
	if cfg.Simulate {
		a.Simulator = simulator.New(simulator.Config{Key: simulator.DefaultKey, Balance: 100, MinDelay: time.Second, MaxDelay: 5 * time.Second, PingbackMethod: "GET"})
		u, err := a.Simulator.Start("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("start simulator: %w", err)
		}
		if cfg.ProviderURL == "" {
			cfg.ProviderURL, cfg.ProviderKey = u, simulator.DefaultKey
		}
	}
	if cfg.ProviderURL != "" {
		// Keep enough idle connections for concurrent submissions and polls, so
		// most requests skip a new TCP (and TLS) handshake.
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = 64
		transport.MaxResponseHeaderBytes = netguard.MaxResponseHeaderBytes // as for deliveries
		client := provider.New(cfg.ProviderURL, cfg.ProviderKey, &http.Client{Timeout: 30 * time.Second, Transport: transport})
		tcfg := task.DefaultConfig()
		tcfg.PublicURL, tcfg.CallbackTimeout, tcfg.PollInterval = cfg.PublicURL, cfg.CallbackTimeout, cfg.PollInterval
		tcfg.MaxAge, tcfg.SubmitRetryBase, tcfg.PollBudget = cfg.TaskMaxAge, cfg.SubmitRetryBase, cfg.PollBudget
		tcfg.ShutdownGrace = cfg.ShutdownGrace
		if opts.Tasks != nil {
			opts.Tasks(&tcfg)
		}
		a.Tasks = task.New(tcfg, a.Store, client, a.Outbox.Wake, mx, a.Log, a.Node)
	}
	dir := cfg.SpoolDir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "spool")
	}
	sp, err := spool.Open(dir)
	if err != nil {
		return fmt.Errorf("open spool in %s (CARRIER_SPOOL_DIR): %w", dir, err)
	}
	a.spool = sp
	a.Spooler = outage.New(sp, a.Tasks, a.Publisher, a.Store, mx, a.Log)
	return nil
}

// Listen opens the API's listening socket.
func (a *App) Listen() error {
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (CARRIER_LISTEN): %w", a.Config.Listen, err)
	}
	a.listener = ln
	public := a.Config.PublicURL
	if public == "" {
		public = "http://" + ln.Addr().String()
	}
	a.publicURL.Store(&public)
	if a.Tasks != nil {
		a.Tasks.SetPublicURL(public)
	}
	return nil
}

// PublicURL is the base URL at which others reach this node (see
// CARRIER_PUBLIC_URL); before Listen, the configured one.
func (a *App) PublicURL() string {
	if p := a.publicURL.Load(); p != nil {
		return *p
	}
	return a.Config.PublicURL
}

// Addr is the address the API listens on, after Listen.
func (a *App) Addr() string { return a.listener.Addr().String() }

// Run serves until ctx is cancelled, then shuts down gracefully: it stops
// accepting requests, commits queued publishes, lets in-flight attempts finish
// (releasing the leases of any that cannot) and closes the store.
func (a *App) Run(ctx context.Context) error {
	if a.listener == nil {
		if err := a.Listen(); err != nil {
			return err
		}
	}
	a.Publisher.Start()
	// The node says it is alive before it takes its first lease, and keeps
	// saying so until the engine has released its leases at shutdown.
	nodeCtx, stopNode := context.WithCancel(context.Background())
	if err := a.heartbeat.Beat(nodeCtx); err != nil {
		a.Log.Error("heartbeat", "err", err)
	}
	var node sync.WaitGroup
	node.Add(1)
	go func() { defer node.Done(); a.heartbeat.Run(nodeCtx) }()
	engineCtx, stopEngine := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if !a.Config.NoDelivery {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.Engine.Run(engineCtx)
		}()
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	wg.Add(6)
	go func() { defer wg.Done(); a.Notifier.Run(bgCtx) }()
	go func() { defer wg.Done(); a.refreshMatcher(bgCtx) }()
	go func() { defer wg.Done(); a.Spooler.Run(bgCtx, time.Second) }()
	go func() { defer wg.Done(); a.Elector.Run(bgCtx) }()
	go func() { defer wg.Done(); a.maintainer.Run(bgCtx) }()
	go func() { defer wg.Done(); a.watchLeadership(bgCtx) }()
	var tasks sync.WaitGroup // apart: it must end before the publisher closes
	var relay sync.WaitGroup // apart too, for the same reason
	relay.Add(1)
	go func() { defer relay.Done(); a.Outbox.Run(bgCtx) }()
	if a.Tasks != nil {
		tasks.Add(1)
		go func() { defer tasks.Done(); a.Tasks.Run(bgCtx) }()
	}

	// No ReadTimeout: it would also end long polls; bodies have their own
	// deadline instead (see serve_limits.go).
	bodyTimeout := cmp.Or(a.Config.BodyReadTimeout, 10*time.Second)
	a.server = &http.Server{Handler: withBodyDeadline(bodyTimeout, a.API), ReadHeaderTimeout: serverHeaderTimeout,
		IdleTimeout: serverIdleTimeout, MaxHeaderBytes: serverMaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(a.Log.Handler(), slog.LevelDebug)}
	a.server.RegisterOnShutdown(a.Queues.Close) // long polls end at once instead of holding up the shutdown
	serveErr := make(chan error, 1)
	ln := newLimitListener(a.listener, cmp.Or(a.Config.MaxConnections, 1024))
	go func() { serveErr <- a.server.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	a.Log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	a.server.Shutdown(sctx)
	cancel()
	stopBackground()
	stopEngine()
	// Submissions in flight finish and are recorded within the shutdown
	// grace (as the engine's attempts do, meanwhile); their task events are
	// then published before the publisher closes.
	tasks.Wait()
	// Rows written during the engine's grace stay in the outbox; the next
	// start (or another node's relay) publishes them.
	relay.Wait()
	a.Publisher.Close()
	wg.Wait()
	stopNode()
	node.Wait()
	a.logs.Close()
	if a.Simulator != nil {
		a.Simulator.Close()
	}
	if cerr := a.Store.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if cerr := a.spool.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// refreshMatcher picks up subscription changes made by other nodes: at
// once when notified, and every matcherFallbackPoll in case a notification
// was lost.
func (a *App) refreshMatcher(ctx context.Context) {
	t := time.NewTicker(matcherFallbackPoll)
	defer t.Stop()
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-a.refreshWanted:
			force = true
		case <-t.C:
		}
		if err := a.Matcher.Refresh(ctx, force); err != nil && ctx.Err() == nil {
			a.Log.Error("refresh subscriptions", "err", err)
		}
	}
}

// NewLogger returns the JSON logger for a level name.
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// applyAlertRules creates or updates the rules of the rules file, if any,
// after checking the whole file and that each of its projects exists.
func applyAlertRules(ctx context.Context, st store.Store, alerts *alert.Service, path string) error {
	if path == "" {
		return nil
	}
	rules, err := alert.LoadFile(path)
	if err != nil {
		return fmt.Errorf("invalid setting CARRIER_ALERT_RULES_FILE: %w", err)
	}
	for i, r := range rules {
		if _, err := st.GetProject(ctx, r.Project); err != nil {
			return fmt.Errorf("invalid setting CARRIER_ALERT_RULES_FILE: %s: rule %d: project %s: %w", path, i, r.Project, err)
		}
	}
	if err := alerts.ApplyFile(ctx, rules); err != nil {
		return fmt.Errorf("CARRIER_ALERT_RULES_FILE: %w", err)
	}
	return nil
}
