/*
 * energy.c — GPU energy, power and clocks from NVML, loaded with dlopen so the
 * binary runs where NVML is absent (the bench then prints "n/a").
 * Energy comes from nvmlDeviceGetTotalEnergyConsumption (millijoules since
 * the driver loaded; Volta and newer).
 */
#include <dlfcn.h>
#include <stdlib.h>

#include "common/status.h"
#include "megadelta.h"

typedef int nvml_ret;
typedef void *nvml_device;

struct md_energy_meter {
    void *lib;
    nvml_device dev;
    nvml_ret (*shutdown)(void);
    nvml_ret (*energy)(nvml_device, unsigned long long *);
    nvml_ret (*power)(nvml_device, unsigned int *);
    nvml_ret (*clock)(nvml_device, int, unsigned int *);
};

enum { NVML_SUCCESS = 0, NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 };

md_status md_energy_meter_open(int gpu_index, md_energy_meter_t **out) {
    *out = NULL;
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return md_fail(MD_ERR_NO_DEVICE, "NVML (libnvidia-ml.so.1) is not available");
    nvml_ret (*init)(void) = (nvml_ret(*)(void))dlsym(lib, "nvmlInit_v2");
    nvml_ret (*by_index)(unsigned, nvml_device *) = (nvml_ret(*)(unsigned, nvml_device *))dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    md_energy_meter_t *m = calloc(1, sizeof *m);
    if (!m) {
        dlclose(lib);
        return md_fail(MD_ERR_OUT_OF_MEMORY, "energy meter: out of memory");
    }
    m->lib = lib;
    m->shutdown = (nvml_ret(*)(void))dlsym(lib, "nvmlShutdown");
    m->energy = (nvml_ret(*)(nvml_device, unsigned long long *))dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption");
    m->power = (nvml_ret(*)(nvml_device, unsigned int *))dlsym(lib, "nvmlDeviceGetPowerUsage");
    m->clock = (nvml_ret(*)(nvml_device, int, unsigned int *))dlsym(lib, "nvmlDeviceGetClockInfo");
    if (!init || !by_index || !m->shutdown || !m->energy || !m->power || !m->clock || init() != NVML_SUCCESS) {
        dlclose(lib);
        free(m);
        return md_fail(MD_ERR_NO_DEVICE, "NVML could not be initialised");
    }
    if (by_index((unsigned)gpu_index, &m->dev) != NVML_SUCCESS) {
        m->shutdown();
        dlclose(lib);
        free(m);
        return md_fail(MD_ERR_NO_DEVICE, "NVML has no GPU %d", gpu_index);
    }
    *out = m;
    return MD_OK;
}

md_status md_energy_meter_read(md_energy_meter_t *m, double *joules, double *watts) {
    unsigned long long mj = 0;
    unsigned int mw = 0;
    if (joules) {
        if (m->energy(m->dev, &mj) != NVML_SUCCESS) return md_fail(MD_ERR_NO_DEVICE, "NVML: this GPU reports no energy counter");
        *joules = (double)mj / 1e3;
    }
    if (watts) {
        if (m->power(m->dev, &mw) != NVML_SUCCESS) return md_fail(MD_ERR_NO_DEVICE, "NVML: this GPU reports no power");
        *watts = (double)mw / 1e3;
    }
    return MD_OK;
}

md_status md_energy_meter_clocks(md_energy_meter_t *m, int *sm_mhz, int *mem_mhz) {
    unsigned sm = 0, mem = 0;
    if (m->clock(m->dev, NVML_CLOCK_SM, &sm) != NVML_SUCCESS || m->clock(m->dev, NVML_CLOCK_MEM, &mem) != NVML_SUCCESS)
        return md_fail(MD_ERR_NO_DEVICE, "NVML: clocks unavailable");
    *sm_mhz = (int)sm;
    *mem_mhz = (int)mem;
    return MD_OK;
}

void md_energy_meter_free(md_energy_meter_t *m) {
    if (!m) return;
    m->shutdown();
    dlclose(m->lib);
    free(m);
}
