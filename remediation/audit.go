package remediation

import (
	"context"
	"log/slog"
	"os"
)

// auditLog writes one structured line per decision: to the process log and,
// when configured, to a file of JSON lines of its own.
type auditLog struct {
	logger *slog.Logger
	file   *os.File
}

func newAuditLog(logger *slog.Logger, path string) (*auditLog, error) {
	a := &auditLog{}
	h := logger.Handler()
	if path != "" {
		f, err := openAppend(path)
		if err != nil {
			return nil, err
		}
		a.file = f
		h = slog.NewMultiHandler(h, slog.NewJSONHandler(f, nil))
	}
	a.logger = slog.New(h).With("audit", "remediation")
	return a, nil
}

// decision logs the outcome of the gates for one alert (or a person's request).
func (a *auditLog) decision(level slog.Level, incident, server, outcome, detail string, attrs ...any) {
	a.logger.Log(context.Background(), level, "remediation decision",
		append([]any{"incident", incident, "server", server, "outcome", outcome, "detail", detail}, attrs...)...)
}

// step logs one step of an action.
func (a *auditLog) step(incident, action, result string, attrs ...any) {
	level := slog.LevelInfo
	if result == ResultFailure {
		level = slog.LevelError
	}
	a.logger.Log(context.Background(), level, "remediation step",
		append([]any{"incident", incident, "action", action, "result", result}, attrs...)...)
	crashAt(action)
}

func (a *auditLog) close() error {
	if a.file == nil {
		return nil
	}
	return a.file.Close()
}
