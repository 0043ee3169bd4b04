package impl

// regions are the regions a Linode can be created in.
var regions = map[string]bool{
	"us-east": true, "us-central": true, "us-west": true, "us-southeast": true,
	"ca-central": true, "eu-west": true, "eu-central": true, "ap-south": true,
	"ap-northeast": true, "ap-southeast": true, "ap-west": true,
}

// plan is what a Linode type provides. Sizes are in MB, transfer in GB.
type plan struct {
	disk, memory, vcpus, gpus, transfer int
}

// plans are the Linode types that can be created.
var plans = map[string]plan{
	"g6-nanode-1":    {disk: 25600, memory: 1024, vcpus: 1, transfer: 1000},
	"g6-standard-1":  {disk: 51200, memory: 2048, vcpus: 1, transfer: 2000},
	"g6-standard-2":  {disk: 81920, memory: 4096, vcpus: 2, transfer: 4000},
	"g6-standard-4":  {disk: 163840, memory: 8192, vcpus: 4, transfer: 5000},
	"g6-standard-6":  {disk: 327680, memory: 16384, vcpus: 6, transfer: 8000},
	"g6-dedicated-2": {disk: 81920, memory: 4096, vcpus: 2, transfer: 4000},
	"g6-dedicated-4": {disk: 163840, memory: 8192, vcpus: 4, transfer: 5000},
	"g1-gpu-rtx6000-1": {disk: 655360, memory: 32768, vcpus: 8, gpus: 1,
		transfer: 16000},
}

// images are the public images a Linode can be built from, with the label
// an event's secondary entity shows.
var images = map[string]string{
	"linode/debian11":       "Debian 11",
	"linode/debian12":       "Debian 12",
	"linode/ubuntu22.04":    "Ubuntu 22.04 LTS",
	"linode/ubuntu24.04":    "Ubuntu 24.04 LTS",
	"linode/alpine3.19":     "Alpine 3.19",
	"linode/alpine3.20":     "Alpine 3.20",
	"linode/centos-stream9": "CentOS Stream 9",
	"linode/rocky9":         "Rocky Linux 9",
	"linode/fedora40":       "Fedora 40",
	"linode/arch":           "Arch Linux",
}
