/* The people map (mgmt.h): uid -> name and roles, parsed from one config string. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mgmt.h"
#include "vg_base.h"

#define PEOPLE_MAX 4096
#define NAME_MAX_LEN 63

struct person {
	uint32_t uid;
	unsigned roles;
	char name[NAME_MAX_LEN + 1];
};

struct mgmt_people {
	size_t n;
	struct person p[];
};

static const struct {
	const char *name;
	unsigned bit;
} role_names[] = {
	{ "admin", MGMT_ROLE_ADMIN },
	{ "authoriser", MGMT_ROLE_AUTHORISER },
	{ "operator", MGMT_ROLE_OPERATOR },
	{ "auditor", MGMT_ROLE_AUDITOR },
};

static int parse_roles(const char *s, size_t len, unsigned *out)
{
	*out = 0;
	while (len) {
		size_t n = 0;
		unsigned bit = 0;

		while (n < len && s[n] != '+')
			n++;
		for (size_t i = 0; i < VG_ARRAY_SIZE(role_names); i++)
			if (strlen(role_names[i].name) == n && memcmp(role_names[i].name, s, n) == 0)
				bit = role_names[i].bit;
		if (!bit)
			return -EINVAL;
		*out |= bit;
		s += n;
		len -= n;
		if (len) { /* skip '+', which must be followed by a role */
			s++;
			len--;
			if (!len)
				return -EINVAL;
		}
	}
	return *out ? 0 : -EINVAL;
}

int mgmt_people_parse(struct mgmt_people **out, const char *spec, char *err, size_t errlen)
{
	struct mgmt_people *people;
	size_t entries = 1, idx = 0;
	const char *p = spec;

	if (!spec || !*spec)
		return vg_errf(err, errlen, -EINVAL, "the people map is empty: no one could use vigild");
	for (const char *c = spec; *c; c++)
		entries += *c == ',';
	if (entries > PEOPLE_MAX)
		return vg_errf(err, errlen, -EINVAL, "the people map has more than %d entries", PEOPLE_MAX);
	people = calloc(1, sizeof(*people) + entries * sizeof(people->p[0]));
	if (!people)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");

	for (; idx < entries; idx++) {
		size_t len = strcspn(p, ",");
		const char *c1 = memchr(p, ':', len), *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - p)) : NULL;
		struct person *who = &people->p[idx];
		char *end;

		if (!c1 || !c2 || c1 == p || !isdigit((unsigned char)p[0]))
			goto out_bad_entry;
		unsigned long uid = strtoul(p, &end, 10);
		if (end != c1 || uid > UINT32_MAX)
			goto out_bad_entry;
		size_t name_len = (size_t)(c2 - c1 - 1);
		if (name_len == 0 || name_len > NAME_MAX_LEN)
			goto out_bad_entry;
		for (size_t i = 0; i < name_len; i++) {
			unsigned char ch = (unsigned char)c1[1 + i];
			if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
				goto out_bad_entry;
		}
		if (parse_roles(c2 + 1, len - (size_t)(c2 + 1 - p), &who->roles) < 0)
			goto out_bad_entry;
		who->uid = (uint32_t)uid;
		memcpy(who->name, c1 + 1, name_len);
		/* The audit chain names people by name: one name is one person, and vigild's own name is
		 * nobody's, so no one can act as the daemon or as someone else in the record. */
		if (strncasecmp(who->name, MGMT_RESERVED_ACTOR_PREFIX, strlen(MGMT_RESERVED_ACTOR_PREFIX)) == 0) {
			vg_errf(err, errlen, -EINVAL,
				"people map entry %zu: names beginning '%s' are Vigil's own in the audit log", idx + 1,
				MGMT_RESERVED_ACTOR_PREFIX);
			free(people);
			return -EINVAL;
		}
		/* Cost: O(n^2) over at most 4096 entries, once at start-up or reload. */
		for (size_t j = 0; j < idx; j++) {
			if (people->p[j].uid == who->uid || strcasecmp(people->p[j].name, who->name) == 0) {
				if (people->p[j].uid == who->uid)
					vg_errf(err, errlen, -EINVAL, "people map entry %zu: uid %u appears twice", idx + 1,
						who->uid);
				else
					vg_errf(err, errlen, -EINVAL, "people map entry %zu: the name %s is entry %zu's already",
						idx + 1, who->name, j + 1);
				free(people);
				return -EINVAL;
			}
		}
		p += len;
		if (*p == ',')
			p++;
	}
	people->n = entries;
	*out = people;
	return 0;

out_bad_entry:
	vg_errf(err, errlen, -EINVAL, "people map entry %zu: expected UID:NAME:ROLE[+ROLE] with roles %s", idx + 1,
		"admin, authoriser, operator, auditor");
	free(people);
	return -EINVAL;
}

void mgmt_people_free(struct mgmt_people **people)
{
	free(*people);
	*people = NULL;
}

int mgmt_people_lookup(const struct mgmt_people *people, uint32_t uid, struct mgmt_actor *out)
{
	for (size_t i = 0; i < people->n; i++) {
		if (people->p[i].uid == uid) {
			*out = (struct mgmt_actor){ people->p[i].name, uid, people->p[i].roles };
			return 0;
		}
	}
	return -ENOENT;
}

int mgmt_people_revoke(const struct mgmt_people *current, const struct mgmt_people *before,
		       const struct mgmt_people *after, char *out, size_t cap, uint32_t *revoked, unsigned max_revoked)
{
	size_t o = 0;
	int changed = 0;

	out[0] = '\0';
	/* Cost: O(n^2) over at most 4096 entries, at a reload. */
	for (size_t i = 0; i < current->n; i++) {
		const struct person *p = &current->p[i];
		struct mgmt_actor b, a;
		unsigned roles = p->roles;

		if (mgmt_people_lookup(before, p->uid, &b) == 0)
			roles &= mgmt_people_lookup(after, p->uid, &a) == 0 ? ~(b.roles & ~a.roles) : 0u;
		if (roles != p->roles) {
			if ((unsigned)changed < max_revoked)
				revoked[changed] = p->uid;
			changed++;
		}
		if (!roles)
			continue;
		int n = snprintf(out + o, cap - o, "%s%u:%s:", o ? "," : "", p->uid, p->name);
		if (n < 0 || (size_t)n >= cap - o)
			return -ENOSPC;
		o += (size_t)n;
		for (size_t r = 0, first = 1; r < VG_ARRAY_SIZE(role_names); r++) {
			if (!(roles & role_names[r].bit))
				continue;
			n = snprintf(out + o, cap - o, "%s%s", first ? "" : "+", role_names[r].name);
			if (n < 0 || (size_t)n >= cap - o)
				return -ENOSPC;
			o += (size_t)n;
			first = 0;
		}
	}
	return changed;
}
