package alert

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"carrier/internal/store"
)

// BalanceSource answers the provider's balance (the provider seam's getbalance).
type BalanceSource interface {
	Balance(ctx context.Context) (string, error)
}

// Prober is the leader-only maintenance service that reads the provider's
// balance every Every, after a random wait of up to Jitter (so many
// Carriers on one provider account do not ask at once), and records it as
// the provider.balance gauge. A failed probe counts a failure and keeps the
// last good value: it is no data for the balance rule and, three times in a
// row, the probe_failures rule's alert, never a balance of 0.
type Prober struct {
	Provider BalanceSource
	Store    store.AlertStore
	Every    time.Duration // default 60 s
	Jitter   time.Duration // default Every/10
	Timeout  time.Duration // default 10 s
	Now      func() time.Time
	// Probed, when set, is told every reading (metrics).
	Probed func(g store.Gauge)
}

func (p *Prober) Name() string { return "balance-probe" }

func (p *Prober) Interval() time.Duration {
	if p.Every > 0 {
		return p.Every
	}
	return time.Minute
}

// Round probes once.
func (p *Prober) Round(ctx context.Context) error {
	jitter := p.Jitter
	if jitter == 0 {
		jitter = p.Interval() / 10
	}
	if jitter > 0 {
		t := time.NewTimer(rand.N(jitter))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	raw, err := p.Provider.Balance(pctx)
	cancel()
	if ctx.Err() != nil {
		return nil // stopped leading or shutting down: not the provider's fault
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	g := store.Gauge{Name: GaugeBalance, Item: ProviderItem, ObservedAt: now}
	if err == nil {
		v, perr := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if perr != nil {
			err = perr
		} else {
			g.Value, g.OK = v, true
		}
	}
	if err != nil {
		g.Error = err.Error()
	}
	stored, serr := p.Store.RecordProbe(ctx, g)
	if serr != nil {
		return serr
	}
	if p.Probed != nil {
		p.Probed(stored)
	}
	return nil
}
