package memory_test

import (
	"testing"

	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store/memory"
	"github.com/wsnotify/wsnotify/shared/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Store { return memory.New() })
}

func TestTheMemoryHistoryKeepsTheContract(t *testing.T) {
	storetest.RunHistory(t, func(*testing.T) notify.History { return memory.New() })
}
