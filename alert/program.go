package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Program runs a command per delivery, like keepalived's notify scripts:
// Argv as configured, the batch as JSON (WebhookBody without the time) on
// its standard input, and the first event in the environment
// (LBD_EVENT_CLASS, LBD_EVENT_SUBJECT, LBD_EVENT_MESSAGE, LBD_NODE,
// LBD_EVENT_COUNT). Exit status 0 is a delivery. At the attempt's timeout
// the program's whole process group is killed.
type Program struct {
	Argv []string
}

func (p *Program) Notify(ctx context.Context, batch []Event, suppressed int) error {
	if len(p.Argv) == 0 {
		return errors.New("program: no command")
	}
	body, err := json.Marshal(WebhookBody{Events: batch, Suppressed: suppressed})
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, p.Argv[0], p.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	ev := batch[0]
	cmd.Env = append(os.Environ(),
		"LBD_EVENT_CLASS="+ev.Class,
		"LBD_EVENT_SUBJECT="+oneLine(ev.Subject),
		"LBD_EVENT_MESSAGE="+oneLine(ev.Message),
		"LBD_NODE="+ev.Node,
		fmt.Sprintf("LBD_EVENT_COUNT=%d", len(batch)+suppressed),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	killGroup(cmd)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("program %s: killed: %w", p.Argv[0], ctx.Err())
		}
		msg := strings.TrimSpace(out.String())
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return fmt.Errorf("program %s: %v: %s", p.Argv[0], err, oneLine(msg))
	}
	return nil
}
