package maintenance

import (
	"context"
	"time"
)

// DRTicketPruner forgets the used disaster-recovery tickets that can no
// longer be fresh, so their single-use records do not pile up.
type DRTicketPruner struct {
	Captcha interface {
		PruneDRTickets(ctx context.Context) error
	}
}

func (p *DRTicketPruner) Name() string { return "dr_ticket_pruner" }

func (p *DRTicketPruner) Interval() time.Duration { return time.Minute }

func (p *DRTicketPruner) Round(ctx context.Context) error { return p.Captcha.PruneDRTickets(ctx) }
