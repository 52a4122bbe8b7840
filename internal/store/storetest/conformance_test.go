package storetest_test

import (
	"testing"

	"carrier/internal/store/storetest"
)

func TestConformance(t *testing.T) { storetest.Run(t) }
