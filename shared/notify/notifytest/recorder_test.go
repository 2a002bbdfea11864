package notifytest_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/notify/pushertest"
)

// The recorder stands in for the real pushers in the core's tests, so it
// keeps their contract.
func TestTheRecorderKeepsThePusherContract(t *testing.T) {
	pushertest.Run(t, func(t *testing.T) pushertest.Target {
		r := notifytest.NewRecorder()
		var mu sync.Mutex
		n := 0
		return pushertest.Target{
			Pusher: r,
			Connect: func(t *testing.T) pushertest.Connection {
				mu.Lock()
				n++
				id := fmt.Sprintf("conn-%d", n)
				mu.Unlock()
				read := 0
				return pushertest.Connection{
					ID: id,
					Next: func(t *testing.T) []byte {
						t.Helper()
						sent := r.Sent(id)
						if read >= len(sent) {
							t.Fatalf("%s received %d messages, want a message more", id, len(sent))
						}
						read++
						return []byte(sent[read-1])
					},
					End: func(*testing.T) { r.SetGone(id) },
				}
			},
		}
	})
}
