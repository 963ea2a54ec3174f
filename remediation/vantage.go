package remediation

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// A vantage point other than this host, asked whether it sees a server up.
// From one host a failed server and a lost route to a live one look the
// same; a second place that still sees the server up tells them apart.
// Each kind (another site's receiver; a load balancer's view) is one
// implementation.
type vantage interface {
	// String names it in decisions and logs.
	String() string
	// sees looks at server now, from there.
	sees(ctx context.Context, server string) (sighting, error)
	// seesUpReason is the decline reason when it sees the server up.
	seesUpReason() string
}

// sighting is what a vantage point saw of a server.
type sighting struct {
	Up bool
	// Detail says what it saw, for the audit log.
	Detail string
}

// look is one vantage point's answer.
type look struct {
	from vantage
	seen sighting
	err  error
}

// lookElsewhere asks every vantage point at once.
func lookElsewhere(ctx context.Context, vantages []vantage, server string) []look {
	looks := make([]look, len(vantages))
	var wg sync.WaitGroup
	for i, v := range vantages {
		wg.Go(func() {
			looks[i].from = v
			looks[i].seen, looks[i].err = v.sees(ctx, server)
		})
	}
	wg.Wait()
	return looks
}

// secondLook is the gate of a promotion whose fence cannot reach the failed
// server (plan.FromAnswers false): every other vantage point is asked. One
// that sees the server up refuses it: this host is cut off from a live
// server, and the standby would work beside it. One that sees it down too
// confirms it (plan.ConfirmedBy). With none answering, this host is the only
// vantage point: refused unless allow_single_vantage. A person's promote is
// a second look and is not refused.
func (r *Receiver) secondLook(ctx context.Context, req request, plan *Plan) *refusal {
	if req.manual || plan.FromAnswers {
		return nil
	}
	var agree, silent []string
	for _, l := range lookElsewhere(ctx, r.cur.vantages, plan.From) {
		switch {
		case l.err != nil:
			silent = append(silent, fmt.Sprintf("%s: %v", l.from, l.err))
		case l.seen.Up:
			return refuse(l.from.seesUpReason(), "%s does not answer this receiver, but %s sees it up (%s): a partition between this host and a live server, not a failed one; no standby is started beside it",
				plan.From, l.from, l.seen.Detail)
		default:
			agree = append(agree, l.from.String())
		}
	}
	plan.ConfirmedBy = agree
	if len(agree) > 0 || r.cur.cfg.AllowSingleVantage {
		return nil
	}
	why := "no other vantage point is configured (peers)"
	if len(silent) > 0 {
		why = "no other vantage point answered: " + strings.Join(silent, "; ")
	}
	return refuse(reasonSingleVantage, "%s does not answer this receiver, so the fence cannot reach it, and %s: "+
		"a failed server and a partition between the two look the same from here; check it from elsewhere and promote by hand, "+
		"or set allow_single_vantage: true", plan.From, why)
}
