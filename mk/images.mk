# Container images (Dockerfile). Included by the root Makefile.
# scripts/images.sh builds them; scripts/image-test.sh runs them as the kubelet runs k8s/base (tests/containers).
.PHONY: images image-test

images: ## build the eight images shop/<service>:dev, print sizes (150 MB budget) and the runtime base
	scripts/images.sh

image-test: $(STAMP) ## build the images and run them as k8s/base says: probes, purchases, load, peak memory
	scripts/image-test.sh
