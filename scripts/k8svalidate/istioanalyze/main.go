// Command istio-analyze runs Istio's own configuration analyzers (the ones `istioctl analyze` runs) on YAML
// files, Kubernetes resources included.
//
// `istioctl analyze --use-kube=false` drops Services, Pods, Namespaces, Nodes and Secrets read from files, so
// the analyzers that need them (destination hosts and ports: IST0101/IST0112, subsets and pods: IST0173,
// port names, injection, gateway ports, ...) are skipped offline. This program feeds the same files to the
// same analyzer library (istio.io/istio/pkg/config/analysis, the Istio version pinned in go.mod) with those
// resources kept, as a cluster would hold them. Output: the messages as JSON, as `istioctl analyze -o json`.
//
// Usage: istio-analyze [--meshConfigFile FILE] FILE...    istio-analyze --version
package main

import (
	"flag"
	"fmt"
	"os"

	"istio.io/istio/istioctl/pkg/util/formatting"
	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/diag"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
	istiolog "istio.io/istio/pkg/log"
	"istio.io/istio/pkg/version"
)

func main() {
	meshConfig := flag.String("meshConfigFile", "", "mesh config (the install's `istio` ConfigMap, key mesh)")
	showVersion := flag.Bool("version", false, "print the Istio version of the analyzers")
	flag.Parse()
	// Istio's own logs (informers syncing, skipped analyzers) go to stderr, warnings and worse only.
	logs := istiolog.DefaultOptions()
	logs.OutputPaths = []string{"stderr"}
	logs.SetDefaultOutputLevel(istiolog.OverrideScopeName, istiolog.WarnLevel)
	_ = istiolog.Configure(logs)
	if *showVersion {
		info := version.Info
		fmt.Printf("istio-analyze: Istio %s (revision %s)\n", info.Version, info.GitRevision)
		return
	}
	if err := run(*meshConfig, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "istio-analyze:", err)
		os.Exit(2)
	}
}

func run(meshConfig string, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("no files to analyze")
	}
	sa := local.NewIstiodAnalyzer(analyzers.AllCombined(), "", resource.Namespace("istio-system"), nil)
	if meshConfig != "" {
		if err := sa.AddFileKubeMeshConfig(meshConfig); err != nil {
			return fmt.Errorf("mesh config %s: %w", meshConfig, err)
		}
	}
	readers := make([]local.ReaderSource, 0, len(files))
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		readers = append(readers, local.ReaderSource{Name: name, Reader: f})
	}
	// Unlike AddReaderKubeSource (istioctl's), keep the Kubernetes runtime resources the files hold.
	// First: the file source is created once, by whichever call comes first (AddDefaultResources too).
	if err := sa.AddTestReaderKubeSource(readers); err != nil {
		return err
	}
	// The resources an Istio install provides that the files may lack (as istioctl analyze adds offline).
	if err := sa.AddDefaultResources(); err != nil {
		return err
	}
	cancel := make(chan struct{})
	result, err := sa.Analyze(cancel)
	if err != nil {
		return err
	}
	if len(result.SkippedAnalyzers) > 0 {
		fmt.Fprintf(os.Stderr, "istio-analyze: skipped analyzers (inputs missing): %v\n", result.SkippedAnalyzers)
	}
	out, err := formatting.Print(result.Messages.SetDocRef("istioctl-analyze").FilterOutLowerThan(diag.Info), formatting.JSONFormat, false)
	if err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}
