/* Runs once (startup) or per byte (the port): optimised for size; the board flags give -O2 for the kernels. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("Os")
#endif
/* Port for STM32F4 parts, register level (no HAL): nucleo_f446re (STM32F446RE) and, unchanged, QEMU's
 * netduinoplus2 (STM32F405, target qemu-stm32f4). Written from RM0390 (STM32F446xx reference manual, rev 6):
 *   6.3  RCC registers        CR, PLLCFGR, CFGR, AHB1ENR, APB1ENR
 *   5.4  PWR registers        CR.VOS (regulator scale)
 *   3.4  FLASH read interface ACR.LATENCY (wait states per HCLK, table 5)
 *   7.4  GPIO registers       MODER, PUPDR, AFRL
 *   25.6 USART registers      SR, DR, BRR, CR1
 * The link is USART2 on PA2 (TX) / PA3 (RX), alternate function 7 (datasheet DS10693, table 11): on a Nucleo-64
 * board, the ST-LINK's virtual COM port (/dev/ttyACM0). 115200 baud, 8N1, polled. STM32F405's RCC, GPIO and USART
 * registers sit at the same addresses with the same layout (RM0090), so QEMU runs this very code; QEMU gives the
 * second -serial to USART2.
 *
 * Clock: HSI (16 MHz RC, +-1 %: enough for a UART) -> PLL -> 168 MHz SYSCLK, APB1 42 MHz, APB2 84 MHz. 168 MHz is
 * the F446's limit at voltage scale 1 without over-drive (180 MHz needs the over-drive switch sequence of 5.1.4;
 * not worth 7 %). HSI rather than the ST-LINK's 8 MHz MCO, which depends on solder bridges of the board revision.
 * Every wait is bounded: if the flash does not take the wait states, or the PLL does not lock or is not selected,
 * the part stays on HSI, and the UART's divisor is computed from the clock the RCC reports (as HAL_RCC_GetPCLK1Freq
 * does), so the link works either way. QEMU does not model the RCC (its registers read 0): there the firmware
 * finds itself on HSI, which is what it then reports. */
#include "onward/port.h"
#include "../cortex-m/systick.h"
#include "../stm32/rcc.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC 0x40023800u
#define RCC_CR      REG(RCC + 0x00)
#define RCC_PLLCFGR REG(RCC + 0x04)
#define RCC_CFGR    REG(RCC + 0x08)
#define RCC_AHB1ENR REG(RCC + 0x30)
#define RCC_APB1ENR REG(RCC + 0x40)
#define CR_PLLON  (1u << 24)
#define CR_PLLRDY (1u << 25)
#define AHB1ENR_GPIOAEN (1u << 0)
#define APB1ENR_USART2EN (1u << 17)
#define APB1ENR_PWREN (1u << 28)

#define PWR_CR REG(0x40007000u)
#define PWR_CR_VOS_SCALE1 (3u << 14)

#define FLASH_ACR REG(0x40023C00u)
#define ACR_LATENCY_MASK 0xFu
#define ACR_PRFTEN (1u << 8)
#define ACR_ICEN   (1u << 9)
#define ACR_DCEN   (1u << 10)

#define GPIOA 0x40020000u
#define GPIOA_MODER REG(GPIOA + 0x00)
#define GPIOA_PUPDR REG(GPIOA + 0x0C)
#define GPIOA_AFRL  REG(GPIOA + 0x20)

#define USART2 0x40004400u
#define USART_SR  REG(USART2 + 0x00)
#define USART_DR  REG(USART2 + 0x04)
#define USART_BRR REG(USART2 + 0x08)
#define USART_CR1 REG(USART2 + 0x0C)
#define SR_RXNE (1u << 5)
#define SR_TXE  (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_UE (1u << 13)

#define HSI_HZ 16000000u
#define BAUD 115200u

/* PLL: HSI / M = 2 MHz VCO input (1-2 MHz; 2 MHz lowers jitter), x N = 336 MHz VCO (100-432 MHz), / P = 168 MHz.
 * Q = 7 gives 48 MHz to USB and SDIO (unused); R = 2 is the reset value (the F446's second output, unused). */
#define PLL_M 8u
#define PLL_N 168u
#define PLL_P 2u
#define PLL_Q 7u
#define PLL_R 2u
#define FLASH_WAIT_STATES 5u /* RM0390 table 5: 150 < HCLK <= 180 MHz at 2.7-3.6 V */
#define CFGR_SW_PLL 2u
#define CFGR_PPRE1_DIV4 (5u << 10)
#define CFGR_PPRE2_DIV2 (4u << 13)

static void clock_init(void)
{
    RCC_APB1ENR |= APB1ENR_PWREN;
    (void)RCC_APB1ENR; /* errata ES0298 "Delay after an RCC peripheral clock enabling": read back first */
    PWR_CR |= PWR_CR_VOS_SCALE1;
    /* wait states first: running faster than the flash allows reads wrong instructions */
    FLASH_ACR = FLASH_WAIT_STATES | ACR_PRFTEN | ACR_ICEN | ACR_DCEN;
    if ((FLASH_ACR & ACR_LATENCY_MASK) != FLASH_WAIT_STATES) return;
    RCC_CFGR = CFGR_PPRE1_DIV4 | CFGR_PPRE2_DIV2; /* APB1 <= 45 MHz, APB2 <= 90 MHz before the switch */
    RCC_PLLCFGR = PLL_M | (PLL_N << 6) | (((PLL_P / 2u) - 1u) << 16) | (PLL_Q << 24) | (PLL_R << 28); /* PLLSRC=HSI */
    RCC_CR |= CR_PLLON;
    if (!stm32_wait_for(&RCC_CR, CR_PLLRDY, CR_PLLRDY)) return;
    RCC_CFGR |= CFGR_SW_PLL;
    (void)stm32_wait_for(&RCC_CFGR, 3u << 2, CFGR_SW_PLL << 2);
}

/* APB1's clock as the RCC reports it (CFGR.SWS, PLLCFGR, CFGR.HPRE/PPRE1), whatever clock_init achieved. */
static uint32_t pclk1_hz(void)
{
    uint32_t cfgr = RCC_CFGR, sysclk = HSI_HZ;
    if (((cfgr >> 2) & 3u) == CFGR_SW_PLL) { /* HSI is the PLL's only source configured here */
        uint32_t pll = RCC_PLLCFGR;
        uint32_t m = pll & 0x3Fu, n = (pll >> 6) & 0x1FFu, p = (((pll >> 16) & 3u) + 1u) * 2u;
        sysclk = HSI_HZ / m * n / p;
    }
    uint32_t hpre = (cfgr >> 4) & 0xFu, ppre1 = (cfgr >> 10) & 7u;
    return stm32_pclk(stm32_hclk(sysclk, hpre), ppre1);
}

void onw_port_init(void)
{
    clock_init();
    RCC_AHB1ENR |= AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= APB1ENR_USART2EN;
    (void)RCC_APB1ENR;
    /* PA2, PA3: alternate function 7 (USART2); a pull-up on RX keeps the line idle-high with no cable */
    GPIOA_AFRL = (GPIOA_AFRL & ~(0xFFu << 8)) | (7u << 8) | (7u << 12);
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4)) | (2u << 4) | (2u << 6);
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(0xFu << 4)) | (1u << 6);
    /* 16x oversampling: BRR holds USARTDIV x 16 = f_PCLK1 / baud (mantissa 12 bits, fraction 4), rounded */
    USART_BRR = (pclk1_hz() + BAUD / 2u) / BAUD;
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE;
    systick_start();
}

#ifndef ONW_TRANSPORT_SEMIHOST /* else boards/semihost/port_semihost.c carries the bytes */
int onw_port_getc(void)
{
    /* An overrun (a byte lost while the firmware computed) sets ORE beside RXNE; reading SR then DR clears both,
     * and the protocol's CRC answers the damaged frame with an error frame. */
    while (!(USART_SR & SR_RXNE)) {
    }
    return (int)(USART_DR & 0xFFu);
}

void onw_port_putc(uint8_t byte)
{
    while (!(USART_SR & SR_TXE)) {
    }
    USART_DR = byte;
}

void onw_port_flush(void) {}
#endif
