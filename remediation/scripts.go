package remediation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// maxScriptOutput bounds what of a script's output reaches the audit log.
const maxScriptOutput = 64 << 10

// scriptRun is how one script went.
type scriptRun struct {
	Script string
	Output string
	Err    error
}

// runScripts runs scripts in order, each under timeout, and stops at the
// first that fails. A script sees the alert and the plan in its environment
// and nothing else of the receiver's (whose environment may hold secrets).
func runScripts(ctx context.Context, scripts []string, timeout time.Duration, env []string) []scriptRun {
	var runs []scriptRun
	for _, s := range scripts {
		run := runScript(ctx, s, timeout, env)
		runs = append(runs, run)
		if run.Err != nil {
			break
		}
	}
	return runs
}

func runScript(ctx context.Context, path string, timeout time.Duration, env []string) scriptRun {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &limitedBuffer{max: maxScriptOutput}
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a timeout ends what the script started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	return scriptRun{Script: path, Output: out.String(), Err: err}
}

// scriptEnv is what a script knows: the alert and the plan, one fact a
// variable, and the whole of each as JSON.
func scriptEnv(stage string, a Alert, p *Plan, dryRun bool) []string {
	labels, _ := json.Marshal(a.Labels)
	plan, _ := json.Marshal(p)
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"IAP_HA_STAGE=" + stage,
		"IAP_HA_DRY_RUN=" + strconv.FormatBool(dryRun),
		"IAP_HA_INCIDENT=" + p.Incident,
		"IAP_HA_ALERTNAME=" + a.Labels["alertname"],
		"IAP_HA_ALERT_STATUS=" + a.Status,
		"IAP_HA_ALERT_STARTS_AT=" + a.StartsAt.UTC().Format(time.RFC3339),
		"IAP_HA_ALERT_LABELS=" + string(labels),
		"IAP_HA_CLUSTER=" + p.Cluster,
		"IAP_HA_FROM=" + p.From,
		"IAP_HA_FROM_URL=" + p.FromURL,
		"IAP_HA_FROM_SITE=" + p.FromSite,
		"IAP_HA_TO=" + p.To,
		"IAP_HA_TO_URL=" + p.ToURL,
		"IAP_HA_TO_SITE=" + p.ToSite,
		"IAP_HA_CROSS_SITE=" + strconv.FormatBool(p.CrossSite),
		"IAP_HA_FENCING_TOKEN=" + strconv.FormatInt(p.FencingToken, 10),
		"IAP_HA_PLAN=" + string(plan),
	}
}

// limitedBuffer keeps the first max bytes written and notes the rest.
type limitedBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := max(b.max-b.buf.Len(), 0); room < n {
		b.dropped += n - room
		p = p[:room]
	}
	b.buf.Write(p)
	return n, nil
}

func (b *limitedBuffer) String() string {
	if b.dropped > 0 {
		return fmt.Sprintf("%s… (%d more bytes)", b.buf.String(), b.dropped)
	}
	return b.buf.String()
}
