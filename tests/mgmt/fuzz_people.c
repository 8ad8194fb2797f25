/* Fuzz target: the people map (uid:name:roles) from vigild's config. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mgmt_people *people = NULL;
	struct mgmt_actor a;
	char err[256], *spec = malloc(size + 1);

	memcpy(spec, data, size);
	spec[size] = '\0';
	if (mgmt_people_parse(&people, spec, err, sizeof(err)) == 0) {
		if (mgmt_people_lookup(people, 1001, &a) == 0 && (!a.name[0] || a.roles == 0))
			abort();
		mgmt_people_free(&people);
	} else if (strchr(err, '\n') || people) {
		abort();
	}
	free(spec);
	return 0;
}
