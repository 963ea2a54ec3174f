package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
)

// pollAnswer is GET /api/v2.0/poll.
type pollAnswer struct {
	Success   bool   `json:"success"`
	Hostname  string `json:"hostname"`
	ServiceID string `json:"serviceId"`
}

// statusAnswer is GET /api/v2.0/status.
type statusAnswer struct {
	Version        string `json:"version"`
	AnsibleVersion string `json:"ansible_version"`
}

// devicePage is one page of a device list. TotalCount is in IAG's examples
// but not its schema; Count is the size of this page.
type devicePage struct {
	Meta struct {
		Count      *int `json:"count"`
		TotalCount *int `json:"total_count"`
	} `json:"meta"`
	Data []json.RawMessage `json:"data"`
}

// size is how many devices the page holds: meta.count, or the data itself.
func (p *devicePage) size() int {
	if p.Meta.Count != nil {
		return *p.Meta.Count
	}
	return len(p.Data)
}

// apiError is IAG's error body: {"code":401,"message":"…"}.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func decodePoll(b []byte) (pollAnswer, error) {
	var p pollAnswer
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decoding poll answer: %w", err)
	}
	if !p.Success {
		return p, errors.New("poll answered success=false")
	}
	return p, nil
}

func decodeStatus(b []byte) (statusAnswer, error) {
	var s statusAnswer
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decoding status answer: %w", err)
	}
	if s.Version == "" {
		return s, errors.New("status answer has no version")
	}
	return s, nil
}

func decodeDevicePage(b []byte) (devicePage, error) {
	var p devicePage
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decoding device list: %w", err)
	}
	if p.Meta.TotalCount != nil && *p.Meta.TotalCount < 0 || p.Meta.Count != nil && *p.Meta.Count < 0 {
		return p, errors.New("device list has a negative count")
	}
	return p, nil
}

func decodeLogin(b []byte) (string, error) {
	var l struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return "", fmt.Errorf("decoding login answer: %w", err)
	}
	if l.Token == "" {
		return "", errors.New("login answer has no token")
	}
	return l.Token, nil
}

// errorMessage is the message of an error body, or "" if b is not one.
func errorMessage(b []byte) string {
	var e apiError
	if json.Unmarshal(b, &e) != nil {
		return ""
	}
	return e.Message
}
