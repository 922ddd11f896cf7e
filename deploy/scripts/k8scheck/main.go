// k8scheck decodes Kubernetes manifests strictly into the official API types (k8s.io/api):
// an unknown or misspelt field, a wrong type or an unknown apiVersion/kind of a built-in
// group is an error. Kinds from other API groups (CRDs such as PodMonitor) are reported as
// skipped. Offline: it needs no cluster and no downloaded JSON schemas.
//
// Usage: k8scheck FILE [FILE...]   (multi-document YAML allowed)
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: k8scheck FILE [FILE...]")
		os.Exit(2)
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	failed := false
	for _, path := range os.Args[1:] {
		if err := checkFile(decoder, path); err != nil {
			fmt.Printf("%s: INVALID: %v\n", path, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func checkFile(decoder runtime.Decoder, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		jsonDoc, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return err
		}
		if err := checkDoc(decoder, path, jsonDoc); err != nil {
			return err
		}
	}
}

func checkDoc(decoder runtime.Decoder, path string, jsonDoc []byte) error {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(jsonDoc, &meta); err != nil {
		return err
	}
	if meta.APIVersion == "" || meta.Kind == "" {
		return fmt.Errorf("apiVersion and kind are required")
	}
	gvk := schema.FromAPIVersionAndKind(meta.APIVersion, meta.Kind)
	if !scheme.Scheme.IsGroupRegistered(gvk.Group) {
		fmt.Printf("%s: %s %s: SKIPPED (not a built-in API group)\n", path, meta.APIVersion, meta.Kind)
		return nil
	}
	if _, _, err := decoder.Decode(jsonDoc, nil, nil); err != nil {
		return err
	}
	fmt.Printf("%s: %s %s: VALID\n", path, meta.APIVersion, meta.Kind)
	return nil
}
