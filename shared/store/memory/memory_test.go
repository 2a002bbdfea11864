package memory_test

import (
	"testing"

	"github.com/wsnotify/wsnotify/shared/store/memory"
	"github.com/wsnotify/wsnotify/shared/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Store { return memory.New() })
}
