// Command generate writes the Grafana dashboards of iap_ha_exporter as
// Classic dashboard JSON, one file per dashboard named after its uid:
//
//	go run ./dashboards/generate -out dashboards
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/iapha/iap_ha_exporter/dashboards"
)

func main() {
	out := flag.String("out", "dashboards", "directory to write the dashboards to")
	flag.Parse()
	if err := generate(*out); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func generate(dir string) error {
	all, err := dashboards.All()
	if err != nil {
		return err
	}
	for _, d := range all {
		b, err := dashboards.JSON(d)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, dashboards.FileName(d)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
